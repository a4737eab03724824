"""A create stored as the topic reducer's first pass would leave it: the same status and
partitions as that pass, or nothing (the loop then provisions the topic as before)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ha_sc.controllers import (
    CreateObject,
    SimulatedCluster,
    UpdateStatus,
    reduce_topic,
    simulate_actions,
    spu_infos,
    spu_load,
)
from ha_sc.controllers.cluster_plan import plan_cluster
from ha_sc.controllers.orphans import Ownership, judge_owner
from ha_sc.controllers.topics.provisioned_create import provisioned_create
from ha_sc.controllers.topics.validation import TopicLimits
from ha_sc.model import (
    Kind,
    ObjectMeta,
    OwnerRef,
    Partition,
    PartitionResolution,
    PartitionSpec,
    PartitionStatus,
    SpuResolution,
    Topic,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    TopicStatus,
)
from tests.stored_spus import stored_spu

ONLINE, OFFLINE = SpuResolution.ONLINE, SpuResolution.OFFLINE
SPEC = TopicSpec(replicas=TopicReplicas.new_computed(3, 2))


spu = stored_spu


def create(state: SimulatedCluster, spec: TopicSpec = SPEC) -> list[CreateObject] | None:
    return provisioned_create(
        "orders",
        spec,
        spus=spu_infos(state.spus.values()),
        partitions=state.partitions,
        load=spu_load(state.partitions.values()),
    )


def test_a_valid_topic_is_stored_provisioned_with_its_partitions_online() -> None:
    state = SimulatedCluster.of((Kind.SPU, spu(n)) for n in (5001, 5002, 5003))
    creates = create(state)
    assert creates is not None
    topic, *partitions = creates
    assert (topic.kind, topic.key, topic.owner) == (Kind.TOPIC, "orders", None)
    assert isinstance(topic.status, TopicStatus)
    assert topic.status.resolution is TopicResolution.PROVISIONED
    assert [p.key for p in partitions] == ["orders-0", "orders-1", "orders-2"]
    for partition in partitions:
        assert isinstance(partition.status, PartitionStatus)
        assert partition.status.resolution is PartitionResolution.ONLINE
        assert partition.owner == OwnerRef(kind="topics", key="orders")


def test_too_few_online_spus_leave_the_topic_to_the_loop() -> None:
    state = SimulatedCluster.of([(Kind.SPU, spu(5001)), (Kind.SPU, spu(5002, OFFLINE))])
    assert create(state) is None


def test_an_invalid_spec_leaves_the_topic_to_the_loop() -> None:
    state = SimulatedCluster.of((Kind.SPU, spu(n)) for n in (5001, 5002, 5003))
    over_cap = provisioned_create(
        "orders",
        SPEC,
        spus=spu_infos(state.spus.values()),
        partitions={},
        limits=TopicLimits(max_partitions_per_topic=2),
    )
    assert over_cap is None


def test_a_partition_key_an_orphan_holds_leaves_the_topic_to_the_loop() -> None:
    orphan = Partition(
        meta=ObjectMeta(
            key="orders-1",
            revision=4,
            create_revision=4,
            owner=OwnerRef(kind="topics", key="orders", create_revision=3),
        ),
        spec=PartitionSpec(leader=5001, replicas=[5001]),
        status=PartitionStatus(),
    )
    state = SimulatedCluster.of(
        [*((Kind.SPU, spu(n)) for n in (5001, 5002, 5003)), (Kind.PARTITION, orphan)]
    )
    assert create(state) is None


def test_a_partition_seen_before_its_topic_is_undecided_not_an_orphan() -> None:
    """The watch of partitions may bring a create's partitions before the watch of topics
    brings the topic: until the cached topics reflect the partition's revision, the plan
    leaves it alone instead of deleting it."""
    partition = Partition(
        meta=ObjectMeta(
            key="orders-0",
            revision=13,
            create_revision=13,
            owner=OwnerRef(kind="topics", key="orders"),
        ),
        spec=PartitionSpec(leader=5001, replicas=[5001]),
        status=PartitionStatus(),
    )
    assert judge_owner(partition, {}, topics_revision=12).ownership is Ownership.UNDECIDED
    assert judge_owner(partition, {}, topics_revision=13).ownership is Ownership.ORPHAN


@settings(max_examples=60, deadline=None)
@given(
    online=st.lists(st.booleans(), min_size=1, max_size=5),
    partitions=st.integers(min_value=1, max_value=6),
    replication=st.integers(min_value=1, max_value=4),
    stored=st.integers(min_value=0, max_value=3),
)
def test_the_create_is_what_one_pass_writes_and_the_loop_then_finds_it_settled(
    online: list[bool], partitions: int, replication: int, stored: int
) -> None:
    """Whatever the SPUs and the topics already placed: either nothing (the loop's
    business), or the topic with the status and partitions the reducer writes for it in
    one pass, after which a pass of the whole cluster writes nothing."""
    spus = [spu(5001 + n, ONLINE if up else OFFLINE) for n, up in enumerate(online)]
    state = SimulatedCluster.of((Kind.SPU, s) for s in spus)
    for n in range(stored):  # other topics, provisioned by the loop
        other = Topic(meta=ObjectMeta(key=f"other{n}"), spec=SPEC, status=TopicStatus())
        state = simulate_actions(state, [CreateObject(Kind.TOPIC, other.key, other.spec)])
        for _ in range(2):
            actions = plan_cluster(
                spus=state.spus, topics=state.topics, partitions=state.partitions, connected=None
            )
            state = simulate_actions(state, actions)
    spec = TopicSpec(replicas=TopicReplicas.new_computed(partitions, replication))
    creates = create(state, spec)
    stored_init = simulate_actions(state, [CreateObject(Kind.TOPIC, "orders", spec)])
    one_pass = reduce_topic(
        stored_init.topics["orders"],
        spus=spu_infos(state.spus.values()),
        partitions={},
        load=spu_load(state.partitions.values()),
    )
    if creates is None:
        assert not one_pass or not (
            isinstance(one_pass[0], UpdateStatus)
            and one_pass[0].status.resolution is TopicResolution.PROVISIONED  # type: ignore[attr-defined]
        )
        return
    status = one_pass[0]
    assert isinstance(status, UpdateStatus)
    assert creates[0].status == status.status
    # the same partitions; the reference names the topic without its create revision
    assert [(c.key, c.spec, c.status) for c in creates[1:]] == [
        (c.key, c.spec, c.status) for c in one_pass[1:] if isinstance(c, CreateObject)
    ]
    assert len(creates) == len(one_pass)
    assert {c.owner for c in creates[1:]} <= {OwnerRef(kind="topics", key="orders")}
    after = simulate_actions(state, creates)
    assert (
        plan_cluster(
            spus=after.spus,
            topics=after.topics,
            partitions=after.partitions,
            connected=None,
            topics_revision=after.revision,
        )
        == []
    )


def test_a_provisioned_topic_creates_no_partition_the_cache_has_not_caught_up_with() -> None:
    """The topic's watch may bring it before the partitions' watch brings the partitions
    stored with it: creating them again would be a write the KV refuses."""
    provisioned = TopicStatus(resolution=TopicResolution.PROVISIONED, replica_map={0: [5001]})
    topic = Topic(
        meta=ObjectMeta(key="orders", revision=10, create_revision=10),
        spec=TopicSpec(replicas=TopicReplicas.new_computed(1, 1)),
        status=provisioned,
    )
    spus = spu_infos([spu(5001)])
    behind = reduce_topic(topic, spus=spus, partitions={}, partitions_revision=9)
    assert behind == []
    caught_up = reduce_topic(topic, spus=spus, partitions={}, partitions_revision=12)
    assert [(type(a), a.key) for a in caught_up] == [(CreateObject, "orders-0")]
    assert reduce_topic(topic, spus=spus, partitions={}) == caught_up  # 0: not known
