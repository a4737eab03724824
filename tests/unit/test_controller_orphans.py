"""Partitions whose owner is gone are collected, never adopted by a topic of the same name."""

from collections.abc import Iterable

from ha_sc.controllers import (
    Action,
    ActionRefused,
    CreateObject,
    DeleteObject,
    SimulatedCluster,
    UpdateStatus,
    simulate_actions,
)
from ha_sc.controllers.cluster_plan import plan_cluster
from ha_sc.controllers.orphans import Ownership, judge_owner
from ha_sc.model import (
    Endpoint,
    Kind,
    ObjectMeta,
    OwnerRef,
    Partition,
    PartitionSpec,
    PartitionStatus,
    Spu,
    SpuResolution,
    SpuSpec,
    SpuStatus,
    Topic,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    TopicStatus,
)
from ha_sc.model.codec import decode_object, encode_value

SPUS = (5001, 5002)


def spu(spu_id: int) -> Spu:
    endpoint = Endpoint(host="localhost", port=9005)
    return Spu(
        meta=ObjectMeta(key=f"spu-{spu_id}", revision=1, create_revision=1),
        spec=SpuSpec(id=spu_id, public_endpoint=endpoint, private_endpoint=endpoint),
        status=SpuStatus(resolution=SpuResolution.ONLINE),
    )


def plan(state: SimulatedCluster) -> list[Action]:
    return plan_cluster(
        spus=state.spus, topics=state.topics, partitions=state.partitions, connected=SPUS
    )


def settle(state: SimulatedCluster, *, max_passes: int = 8) -> SimulatedCluster:
    """Apply whole-cluster passes until one yields no action."""
    for _ in range(max_passes):
        actions = plan(state)
        if not actions:
            return state
        state = simulate_actions(state, actions)
    raise AssertionError(f"no fixed point after {max_passes} passes")


def create_topic(
    state: SimulatedCluster, name: str = "orders", partitions: int = 2
) -> SimulatedCluster:
    spec = TopicSpec(replicas=TopicReplicas.new_computed(partitions, 2))
    return simulate_actions(state, [CreateObject(Kind.TOPIC, name, spec)])


def provisioned_topic() -> SimulatedCluster:
    state = SimulatedCluster.of((Kind.SPU, spu(i)) for i in SPUS)
    state = settle(create_topic(state))
    assert state.topics["orders"].status.resolution is TopicResolution.PROVISIONED
    assert set(state.partitions) == {"orders-0", "orders-1"}
    return state


def deleted_by_hand(state: SimulatedCluster, name: str = "orders") -> SimulatedCluster:
    """``state`` without the topic but with its partitions: an ``etcdctl del`` of the key."""
    kept: Iterable[tuple[Kind, object]] = [
        (kind, obj)
        for kind, by_key in state.objects.items()
        for key, obj in by_key.items()
        if not (kind is Kind.TOPIC and key == name)
    ]
    return SimulatedCluster.of(kept, revision=state.revision + 1)  # type: ignore[arg-type]


def test_partitions_name_their_topic_by_key_and_create_revision() -> None:
    state = provisioned_topic()
    created = state.topics["orders"].meta.create_revision
    for partition in state.partitions.values():
        assert partition.meta.owner == OwnerRef(
            kind="topics", key="orders", create_revision=created
        )
    assert not any(isinstance(a, DeleteObject) for a in plan(state))


def test_partitions_of_a_topic_deleted_by_hand_are_deleted_at_their_revision() -> None:
    state = deleted_by_hand(provisioned_topic())
    actions = plan(state)
    assert actions == [
        DeleteObject(
            Kind.PARTITION,
            key,
            state.partitions[key].meta.revision,
            reason="orphaned: owner topic orders gone",
        )
        for key in ("orders-0", "orders-1")
    ]
    assert settle(state).partitions == {}


def test_a_topic_created_again_under_the_name_gets_fresh_partitions() -> None:
    before = provisioned_topic()
    old = {key: p.meta.create_revision for key, p in before.partitions.items()}
    state = create_topic(deleted_by_hand(before), partitions=3)
    first = plan(state)
    deletes = [a for a in first if isinstance(a, DeleteObject)]
    assert [a.key for a in deletes] == ["orders-0", "orders-1"]
    assert first[: len(deletes)] == deletes, "orphans go before anything else in the pass"
    assert deletes[0].reason is not None and "now is another one" in deletes[0].reason
    state = settle(state)
    topic = state.topics["orders"]
    assert topic.status.resolution is TopicResolution.PROVISIONED
    assert set(state.partitions) == {"orders-0", "orders-1", "orders-2"}
    for key, partition in state.partitions.items():
        assert partition.meta.create_revision > topic.meta.create_revision
        assert partition.meta.create_revision != old.get(key)
        assert partition.meta.owner is not None
        assert partition.meta.owner.create_revision == topic.meta.create_revision


def test_an_orphan_is_never_given_to_the_new_topic_nor_a_status() -> None:
    """Same name, orphans still stored, the new topic ready to place: one pass deletes the
    orphans first, then creates every partition of the new topic, none kept."""
    state = create_topic(deleted_by_hand(provisioned_topic()), partitions=3)
    topic = state.topics["orders"]
    pending = TopicStatus(resolution=TopicResolution.PENDING)
    state = simulate_actions(
        state, [UpdateStatus(Kind.TOPIC, "orders", topic.meta.revision, pending)]
    )
    actions = plan(state)
    on_partitions = [a for a in actions if a.kind is Kind.PARTITION]
    assert [type(a).__name__ for a in on_partitions] == ["DeleteObject"] * 2 + ["CreateObject"] * 3
    owner = OwnerRef(kind="topics", key="orders", create_revision=topic.meta.create_revision)
    creates = [a for a in on_partitions if isinstance(a, CreateObject)]
    assert [a.key for a in creates] == ["orders-0", "orders-1", "orders-2"]
    assert all(a.owner == owner for a in creates)
    after = simulate_actions(state, actions)  # the deletes land before the creates of their keys
    assert all(p.meta.owner == owner for p in after.partitions.values())


def test_an_api_delete_still_cascades_to_partitions_with_an_identity() -> None:
    state = provisioned_topic()
    topic = state.topics["orders"]
    state = simulate_actions(state, [DeleteObject(Kind.TOPIC, "orders", topic.meta.revision)])
    assert state.partitions == {}


def legacy_partition(key: str, *, create_revision: int, owner: str = "orders") -> Partition:
    """A partition as an older version stored it: its owner named by key alone."""
    value = (
        b'{"owner":{"key":"' + owner.encode() + b'","kind":"topics"},'
        b'"spec":{"leader":5001,"replicas":[5001,5002]}}'
    )
    obj = decode_object(
        Kind.PARTITION, key, value, revision=create_revision, create_revision=create_revision
    )
    return obj  # type: ignore[no-any-return]


def topic_at(create_revision: int, name: str = "orders") -> Topic:
    return Topic(
        meta=ObjectMeta(key=name, revision=create_revision, create_revision=create_revision),
        spec=TopicSpec(replicas=TopicReplicas.new_computed(1, 2)),
        status=TopicStatus(),
    )


def test_a_legacy_owner_reference_loads_without_identity() -> None:
    partition = legacy_partition("orders-0", create_revision=5)
    assert partition.meta.owner == OwnerRef(kind="topics", key="orders")
    assert partition.meta.owner.create_revision is None
    encoded = encode_value(partition.spec, partition.status, partition.meta.owner)
    assert b"create_revision" not in encoded


def test_a_legacy_partition_created_after_its_topic_is_owned() -> None:
    topics = {"orders": topic_at(3)}
    partition = legacy_partition("orders-0", create_revision=5)
    assert judge_owner(partition, topics).ownership is Ownership.OWNED


def test_a_legacy_partition_created_before_its_topic_is_an_orphan() -> None:
    topics = {"orders": topic_at(9)}
    partition = legacy_partition("orders-0", create_revision=5)
    judgement = judge_owner(partition, topics)
    assert judgement.ownership is Ownership.ORPHAN
    assert "created 5 before topic orders now (created 9)" in judgement.reason


def test_a_legacy_partition_whose_topic_is_gone_is_an_orphan() -> None:
    judgement = judge_owner(legacy_partition("orders-0", create_revision=5), {})
    assert judgement.ownership is Ownership.ORPHAN
    assert judgement.reason == "owner topic orders gone"


def test_an_owner_newer_than_the_cached_topic_is_left_for_a_later_pass() -> None:
    """The partition names a topic created after the one this cache holds: the cache of
    topics is behind; nothing is deleted, no status written, nothing placed."""
    owner = OwnerRef(kind="topics", key="orders", create_revision=12)
    partition = Partition(
        meta=ObjectMeta(key="orders-0", revision=13, create_revision=13, owner=owner),
        spec=PartitionSpec(leader=5001, replicas=[5001, 5002]),
        status=PartitionStatus(),
    )
    assert judge_owner(partition, {"orders": topic_at(3)}).ownership is Ownership.UNDECIDED
    state = SimulatedCluster.of(
        [
            *((Kind.SPU, spu(i)) for i in SPUS),
            (Kind.TOPIC, topic_at(3)),
            (Kind.PARTITION, partition),
        ]
    )
    assert all(action.key != "orders-0" for action in plan(state))


def test_a_partition_without_owner_is_left_alone() -> None:
    partition = Partition(
        meta=ObjectMeta(key="loose-0", revision=2, create_revision=2),
        spec=PartitionSpec(leader=5001, replicas=[5001]),
        status=PartitionStatus(),
    )
    assert judge_owner(partition, {}).ownership is Ownership.UNOWNED


def test_an_owner_newer_than_topics_seen_is_an_orphan_once_the_cache_is_past_it() -> None:
    """No topic of that name was created at the revision the reference names, though the
    cached topics reflect the store past it: the owner it names is gone."""
    owner = OwnerRef(kind="topics", key="orders", create_revision=12)
    partition = Partition(
        meta=ObjectMeta(key="orders-0", revision=13, create_revision=13, owner=owner),
        spec=PartitionSpec(leader=5001, replicas=[5001, 5002]),
        status=PartitionStatus(),
    )
    topics = {"orders": topic_at(3)}
    assert judge_owner(partition, topics, topics_revision=11).ownership is Ownership.UNDECIDED
    judgement = judge_owner(partition, topics, topics_revision=12)
    assert judgement.ownership is Ownership.ORPHAN
    assert "created 12 gone" in judgement.reason


def accepted(state: SimulatedCluster, actions: Iterable[Action]) -> SimulatedCluster:
    """``state`` after the actions the KV accepts, each on its own; the refused are
    skipped, as the writer skips a stale action."""
    for action in actions:
        try:
            state = simulate_actions(state, [action])
        except ActionRefused:
            continue
    return state


def test_a_topic_deleted_while_its_pass_writes_leaves_nothing_behind() -> None:
    """The pass that provisions a topic planned from a cache that still held it; the
    delete lands first: the status write is refused, the partition creates are not,
    and the next passes collect them."""
    state = create_topic(SimulatedCluster.of((Kind.SPU, spu(i)) for i in SPUS))
    actions = plan(state)
    assert {a.key for a in actions if isinstance(a, CreateObject)} == {"orders-0", "orders-1"}
    revision = state.topics["orders"].meta.revision
    state = simulate_actions(state, [DeleteObject(Kind.TOPIC, "orders", revision)])
    state = accepted(state, actions)
    assert set(state.partitions) == {"orders-0", "orders-1"}
    assert settle(state).objects[Kind.PARTITION] == {}
    assert settle(state).topics == {}
