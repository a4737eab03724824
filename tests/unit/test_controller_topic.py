"""The topic state machine, run against a simulated KV until it settles."""

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ha_sc.controllers import (
    PENDING_REASON,
    Action,
    CreateObject,
    DeleteObject,
    SimulatedCluster,
    UpdateStatus,
    reduce_partition,
    reduce_topic,
    simulate_actions,
    spu_infos,
    spu_load,
    spus_by_id,
)
from ha_sc.controllers.cluster_plan import plan_cluster
from ha_sc.model import (
    ComputedReplicas,
    Kind,
    ObjectMeta,
    OwnerRef,
    PartitionResolution,
    PartitionSpec,
    PartitionStatus,
    ReplicaStatus,
    Spu,
    SpuResolution,
    Topic,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    TopicStatus,
)
from tests.stored_spus import stored_spu

ONLINE, OFFLINE = SpuResolution.ONLINE, SpuResolution.OFFLINE


spu = stored_spu


def topic(
    replicas: TopicReplicas, status: TopicStatus | None = None, *, name: str = "orders"
) -> Topic:
    return Topic(
        meta=ObjectMeta(key=name, revision=1),
        spec=TopicSpec(replicas=replicas),
        status=status or TopicStatus(),
    )


def cluster(*objects: Spu | Topic) -> SimulatedCluster:
    kinds = {Spu: Kind.SPU, Topic: Kind.TOPIC}
    return SimulatedCluster.of((kinds[type(obj)], obj) for obj in objects)


def with_spus(state: SimulatedCluster, spus: Iterable[Spu]) -> SimulatedCluster:
    return SimulatedCluster.of(
        [
            *((Kind.TOPIC, t) for t in state.topics.values()),
            *((Kind.PARTITION, p) for p in state.partitions.values()),
            *((Kind.SPU, s) for s in spus),
        ],
        revision=state.revision,
    )


def reduce_all(state: SimulatedCluster) -> list[Action]:
    spus = spu_infos(state.spus.values())
    load = spu_load(state.partitions.values())
    actions: list[Action] = []
    for key in sorted(state.topics):
        actions += reduce_topic(
            state.topics[key], spus=spus, partitions=state.partitions, load=load
        )
    return actions


def settle(state: SimulatedCluster, *, max_passes: int = 5) -> tuple[SimulatedCluster, int]:
    """Apply passes until one yields no action; returns the state and the passes that wrote."""
    for passes in range(max_passes + 1):
        actions = reduce_all(state)
        if not actions:
            return state, passes
        assert reduce_all(state) == actions, "same state, different actions"
        state = simulate_actions(state, actions)
    raise AssertionError(f"no fixed point after {max_passes} passes")


def resolution(state: SimulatedCluster, name: str = "orders") -> TopicResolution:
    return state.topics[name].status.resolution


COMPUTED_3X2 = TopicReplicas.new_computed(3, 2)


def created(replica_map: dict[int, list[int]], online: set[int]) -> list[CreateObject]:
    """The creates of a topic's partitions: first replica leading, Online when it is,
    every replica at offset 0 (a new log is empty) and every follower in sync."""
    owner = OwnerRef(kind="topics", key="orders")
    return [
        CreateObject(
            Kind.PARTITION,
            f"orders-{pid}",
            PartitionSpec(leader=replicas[0], replicas=replicas),
            PartitionStatus(
                resolution=PartitionResolution.ONLINE,
                leader=ReplicaStatus(spu=replicas[0], hw=0, leo=0),
                replicas=[ReplicaStatus(spu=spu, hw=0, leo=0) for spu in replicas[1:]],
                lsr=len(replicas) - 1,
            )
            if replicas[0] in online
            else PartitionStatus(),
            owner,
        )
        for pid, replicas in replica_map.items()
    ]


@pytest.mark.parametrize(
    "status",
    [
        TopicStatus(),
        TopicStatus(resolution=TopicResolution.PENDING, reason=PENDING_REASON),
        TopicStatus(resolution=TopicResolution.INVALID_CONFIG, reason="was invalid"),
        TopicStatus(resolution=TopicResolution.INSUFFICIENT_RESOURCES, reason="was short"),
    ],
)
def test_a_valid_topic_is_provisioned_with_its_partitions_in_one_pass(
    status: TopicStatus,
) -> None:
    state = cluster(spu(5001), spu(5002), spu(5003), topic(COMPUTED_3X2, status))
    replica_map = {0: [5001, 5002], 1: [5003, 5001], 2: [5002, 5003]}
    provisioned = TopicStatus(resolution=TopicResolution.PROVISIONED, replica_map=replica_map)
    assert reduce_all(state) == [
        UpdateStatus(Kind.TOPIC, "orders", 1, provisioned),
        *created(replica_map, online={5001, 5002, 5003}),
    ]


def test_partitions_are_created_online_only_where_their_leader_is() -> None:
    assigned = TopicReplicas.new_assigned({0: [5001, 5002], 1: [5002, 5001]})
    state = cluster(spu(5001), spu(5002, OFFLINE), topic(assigned))
    actions = reduce_all(state)
    assert actions[1:] == created({0: [5001, 5002], 1: [5002, 5001]}, online={5001})


def test_lifecycle_init_provisioned_partitions_online() -> None:
    state, passes = settle(cluster(spu(5001), spu(5002), spu(5003), topic(COMPUTED_3X2)))
    assert passes == 1
    assert resolution(state) is TopicResolution.PROVISIONED
    assert state.topics["orders"].status.reason == ""
    assert sorted(state.partitions) == ["orders-0", "orders-1", "orders-2"]
    for pid, replicas in state.topics["orders"].status.replica_map.items():
        partition = state.partitions[f"orders-{pid}"]
        assert partition.spec.replicas == replicas
        assert partition.spec.leader == replicas[0]
        assert partition.status.resolution is PartitionResolution.ONLINE
        assert partition.status.leader.spu == replicas[0]
        assert partition.meta.owner == OwnerRef(kind="topics", key="orders")
        spus = spus_by_id(spu_infos(state.spus.values()))
        assert reduce_partition(partition, spus=spus) == []  # its status needs no second write


def test_settling_shows_an_unplaced_topic_pending_and_leaves_a_refused_one() -> None:
    short = cluster(spu(5001), spu(5002, OFFLINE), topic(COMPUTED_3X2))
    spus = spu_infos(short.spus.values())
    [action] = reduce_topic(short.topics["orders"], spus=spus, partitions={}, settling=True)
    pending = TopicStatus(resolution=TopicResolution.PENDING, reason=PENDING_REASON)
    assert action == UpdateStatus(Kind.TOPIC, "orders", 1, pending)
    waiting = simulate_actions(short, [action]).topics["orders"]
    assert reduce_topic(waiting, spus=spus, partitions={}, settling=True) == []
    refused = TopicStatus(resolution=TopicResolution.INSUFFICIENT_RESOURCES, reason="short")
    stays = topic(COMPUTED_3X2, refused)
    assert reduce_topic(stays, spus=spus, partitions={}, settling=True) == []


def test_provisioned_state_yields_no_action() -> None:
    state, _ = settle(cluster(spu(5001), spu(5002), topic(COMPUTED_3X2)))
    assert reduce_all(state) == []
    assert reduce_all(state) == []


def test_insufficient_resources_until_spus_come_online() -> None:
    state = cluster(
        spu(5001), spu(5002), spu(5003, OFFLINE), topic(TopicReplicas.new_computed(2, 3))
    )
    state, _ = settle(state)
    assert resolution(state) is TopicResolution.INSUFFICIENT_RESOURCES
    assert state.topics["orders"].status.reason == (
        "replication factor 3 needs 3 online SPUs, 2 online: 5001, 5002; offline: 5003"
    )
    assert state.partitions == {}

    state, passes = settle(with_spus(state, [spu(5001), spu(5002), spu(5003)]))
    assert passes == 1
    assert resolution(state) is TopicResolution.PROVISIONED
    assert sorted(state.partitions) == ["orders-0", "orders-1"]


def test_insufficient_reason_follows_the_spus() -> None:
    state, _ = settle(cluster(spu(5001, OFFLINE), topic(TopicReplicas.new_computed(1, 2))))
    assert state.topics["orders"].status.reason == (
        "replication factor 2 needs 2 online SPUs, none online; offline: 5001"
    )
    state, passes = settle(with_spus(state, [spu(5001)]))
    assert passes == 1
    assert resolution(state) is TopicResolution.INSUFFICIENT_RESOURCES
    assert state.topics["orders"].status.reason == (
        "replication factor 2 needs 2 online SPUs, 1 online: 5001"
    )


def test_assigned_map_naming_unknown_spu_is_invalid() -> None:
    assigned = TopicReplicas.new_assigned({0: [5001, 5009], 1: [5002, 5001]})
    state = cluster(spu(5001), spu(5002), topic(assigned))
    state, passes = settle(state)
    assert passes == 1
    assert resolution(state) is TopicResolution.INVALID_CONFIG
    assert state.topics["orders"].status.reason == "assigned replicas name unknown spu id: 5009"
    assert reduce_all(state) == []


def test_invalid_config_clears_once_the_spu_registers() -> None:
    assigned = TopicReplicas.new_assigned({0: [5001, 5009]})
    state, _ = settle(cluster(spu(5001), topic(assigned)))
    assert resolution(state) is TopicResolution.INVALID_CONFIG
    state, passes = settle(with_spus(state, [spu(5001), spu(5009, OFFLINE)]))
    assert passes == 1
    assert resolution(state) is TopicResolution.PROVISIONED


def test_invalid_config_clears_once_the_spec_is_fixed() -> None:
    assigned = TopicReplicas.new_assigned({0: [5001, 5009]})
    state, _ = settle(cluster(spu(5001), topic(assigned)))
    fixed = state.topics["orders"].model_copy(
        update={"spec": TopicSpec(replicas=TopicReplicas.new_assigned({0: [5001]}))}
    )
    state, passes = settle(SimulatedCluster.of([(Kind.SPU, spu(5001)), (Kind.TOPIC, fixed)]))
    assert passes == 1
    assert state.topics["orders"].status.replica_map == {0: [5001]}


def test_computed_spec_that_bypassed_validation_is_invalid() -> None:
    replicas = TopicReplicas.model_construct(
        computed=ComputedReplicas.model_construct(
            partitions=0, replication_factor=1, ignore_rack_assignment=False
        ),
        assigned=None,
    )
    state = cluster(spu(5001), topic(replicas))
    [action] = reduce_all(state)
    assert isinstance(action, UpdateStatus)
    assert action.status == TopicStatus(
        resolution=TopicResolution.INVALID_CONFIG,
        reason="replicas.computed.partitions: Input should be greater than or equal to 1",
    )


def test_assigned_topic_uses_its_map_even_with_spus_offline() -> None:
    assigned = TopicReplicas.new_assigned({0: [5002, 5001], 1: [5001, 5002]})
    state, passes = settle(cluster(spu(5001, OFFLINE), spu(5002, OFFLINE), topic(assigned)))
    assert passes == 1
    assert state.topics["orders"].status.replica_map == {0: [5002, 5001], 1: [5001, 5002]}
    assert state.partitions["orders-0"].spec == PartitionSpec(leader=5002, replicas=[5002, 5001])


def test_missing_partition_is_recreated_from_the_replica_map() -> None:
    state, _ = settle(cluster(spu(5001), spu(5002), spu(5003), topic(COMPUTED_3X2)))
    lost = state.partitions["orders-1"]
    kept = {k: v for k, v in state.partitions.items() if k != "orders-1"}
    state = SimulatedCluster.of(
        [
            *((Kind.SPU, s) for s in state.spus.values()),
            (Kind.TOPIC, state.topics["orders"]),
            *((Kind.PARTITION, p) for p in kept.values()),
        ]
    )
    actions = reduce_all(state)
    [recreated] = created({1: lost.spec.replicas}, online={5001, 5002, 5003})
    assert actions == [recreated]
    assert reduce_all(simulate_actions(state, actions)) == []


def test_partitions_stored_before_the_status_keep_their_replicas() -> None:
    pending = TopicStatus(resolution=TopicResolution.PENDING, reason=PENDING_REASON)
    state = cluster(spu(5001), spu(5002), spu(5003), topic(COMPUTED_3X2, pending))
    early = CreateObject(
        Kind.PARTITION,
        "orders-0",
        PartitionSpec(leader=5003, replicas=[5003, 5002]),
        PartitionStatus(),
        OwnerRef(kind="topics", key="orders"),
    )
    state = simulate_actions(state, [early])
    actions = reduce_all(state)
    status = actions[0]
    assert isinstance(status, UpdateStatus)
    assert isinstance(status.status, TopicStatus)
    assert status.status.replica_map[0] == [5003, 5002]
    assert [a.key for a in actions[1:]] == ["orders-1", "orders-2"]
    state, _ = settle(simulate_actions(state, actions))
    assert state.partitions["orders-0"].spec.leader == 5003


def test_second_topic_spreads_over_the_first_topics_load() -> None:
    first = topic(TopicReplicas.new_computed(1, 1), name="first")
    second = topic(TopicReplicas.new_computed(2, 1), name="second")
    state, _ = settle(cluster(spu(5001), spu(5002), spu(5003), first))
    state, _ = settle(simulate_actions(state, [CreateObject(Kind.TOPIC, "second", second.spec)]))
    assert state.topics["first"].status.replica_map == {0: [5001]}
    assert state.topics["second"].status.replica_map == {0: [5002], 1: [5003]}


def test_deleting_topic_needs_nothing() -> None:
    deleting = TopicStatus(resolution=TopicResolution.DELETING)
    assert reduce_all(cluster(spu(5001), topic(COMPUTED_3X2, deleting))) == []


def test_deleting_the_topic_deletes_its_partitions() -> None:
    state, _ = settle(cluster(spu(5001), spu(5002), topic(COMPUTED_3X2)))
    revision = state.topics["orders"].meta.revision
    state = simulate_actions(state, [DeleteObject(Kind.TOPIC, "orders", revision)])
    assert state.topics == {}
    assert state.partitions == {}
    assert reduce_all(state) == []


@pytest.mark.parametrize("spu_count", [1, 2, 3, 5])
def test_reduce_is_idempotent_at_every_step(spu_count: int) -> None:
    spus = [spu(5001 + i) for i in range(spu_count)]
    state = cluster(*spus, topic(TopicReplicas.new_computed(4, 2)))
    for _ in range(4):
        actions = reduce_all(state)
        assert reduce_all(state) == actions
        if not actions:
            break
        state = simulate_actions(state, actions)
    assert reduce_all(state) == []
    expected = (
        TopicResolution.PROVISIONED if spu_count >= 2 else TopicResolution.INSUFFICIENT_RESOURCES
    )
    assert resolution(state) is expected


STARTING_STATUSES = [
    TopicStatus(),
    TopicStatus(resolution=TopicResolution.PENDING, reason=PENDING_REASON),
    TopicStatus(resolution=TopicResolution.INVALID_CONFIG, reason="was invalid"),
    TopicStatus(resolution=TopicResolution.INSUFFICIENT_RESOURCES, reason="was short"),
]


@settings(max_examples=100, deadline=None)  # no timing: the machine is shared
@given(
    status=st.sampled_from(STARTING_STATUSES),
    online=st.sets(st.sampled_from([5001, 5002, 5003, 5004]), max_size=4),
    stored=st.sets(st.integers(min_value=0, max_value=3), max_size=4),
    settling=st.booleans(),
)
def test_every_starting_state_settles_in_one_pass_to_the_same_kind_of_end(
    status: TopicStatus, online: set[int], stored: set[int], settling: bool
) -> None:
    """Whatever status a topic holds and whichever of its partitions are stored already
    (a pass cut short), the whole-cluster plan reaches a fixed point after one writing
    pass: Provisioned with every partition stored once, on its stored replicas, each
    partition's status settled; or, with too few SPUs online to place what is missing,
    refused or waiting."""
    spus = [spu(i, ONLINE if i in online else OFFLINE) for i in (5001, 5002, 5003, 5004)]
    state = cluster(*spus, topic(TopicReplicas.new_computed(4, 2), status))
    early = {pid: [5001 + pid % 4, 5001 + (pid + 1) % 4] for pid in sorted(stored)}
    owner = OwnerRef(kind="topics", key="orders", create_revision=None)
    state = simulate_actions(
        state,
        [
            CreateObject(
                Kind.PARTITION,
                f"orders-{pid}",
                PartitionSpec(leader=replicas[0], replicas=replicas),
                PartitionStatus(),
                owner,
            )
            for pid, replicas in early.items()
        ],
    )

    def plan(state: SimulatedCluster) -> list[Action]:
        return plan_cluster(
            spus=state.spus,
            topics=state.topics,
            partitions=state.partitions,
            connected=online,
            settling=settling,
        )

    writing = 0
    for _ in range(4):  # bounded: the claim is one writing pass (plus leader moves)
        actions = plan(state)
        if not actions:
            break
        writing += 1
        state = simulate_actions(state, actions)  # refuses a second create of a key
    assert plan(state) == []
    topic_status = state.topics["orders"].status
    if len(online) >= 2 or len(early) == 4:  # enough SPUs, or nothing left to place
        assert topic_status.resolution is TopicResolution.PROVISIONED
        assert sorted(state.partitions) == [f"orders-{pid}" for pid in range(4)]
        for pid, replicas in early.items():
            assert topic_status.replica_map[pid] == replicas
        placed_online = all(
            topic_status.replica_map[pid][0] in online for pid in range(4) if pid not in early
        )
        if not early and placed_online:
            assert writing == 1
    elif settling:
        assert topic_status.resolution in (status.resolution, TopicResolution.PENDING)
        assert state.partitions.keys() == {f"orders-{pid}" for pid in early}
    else:
        assert topic_status.resolution is TopicResolution.INSUFFICIENT_RESOURCES
