"""The simulated KV the reducer tests run against refuses what the KV refuses."""

import pytest

from ha_sc.controllers import (
    ActionRefused,
    CreateObject,
    DeleteObject,
    SimulatedCluster,
    UpdateSpec,
    UpdateStatus,
    simulate_actions,
)
from ha_sc.model import (
    Kind,
    OwnerRef,
    PartitionSpec,
    PartitionStatus,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    TopicStatus,
)

SPEC = TopicSpec(replicas=TopicReplicas.new_computed(1, 1))
OWNER = OwnerRef(kind="topics", key="orders")


def created() -> SimulatedCluster:
    return simulate_actions(
        SimulatedCluster(),
        [
            CreateObject(Kind.TOPIC, "orders", SPEC),
            CreateObject(
                Kind.PARTITION, "orders-0", PartitionSpec(leader=1, replicas=[1]), owner=OWNER
            ),
        ],
    )


def test_create_sets_revisions_and_default_status() -> None:
    state = created()
    assert state.revision == 2
    topic = state.topics["orders"]
    assert (topic.meta.revision, topic.meta.create_revision) == (1, 1)
    assert topic.status == TopicStatus()
    assert state.partitions["orders-0"].status == PartitionStatus()
    assert state.partitions["orders-0"].meta.owner == OWNER


def test_updates_bump_the_revision_and_keep_the_other_part() -> None:
    state = created()
    status = TopicStatus(resolution=TopicResolution.PENDING)
    state = simulate_actions(state, [UpdateStatus(Kind.TOPIC, "orders", 1, status)])
    topic = state.topics["orders"]
    assert (topic.meta.revision, topic.meta.create_revision) == (3, 1)
    assert (topic.spec, topic.status) == (SPEC, status)
    spec = PartitionSpec(leader=2, replicas=[1, 2])
    state = simulate_actions(state, [UpdateSpec(Kind.PARTITION, "orders-0", 2, spec)])
    assert state.partitions["orders-0"].spec == spec
    assert state.partitions["orders-0"].status == PartitionStatus()


@pytest.mark.parametrize(
    "action",
    [
        CreateObject(Kind.TOPIC, "orders", SPEC),
        UpdateStatus(Kind.TOPIC, "orders", 9, TopicStatus()),
        UpdateSpec(Kind.TOPIC, "missing", 1, SPEC),
        DeleteObject(Kind.TOPIC, "orders", 2),
    ],
)
def test_refuses_what_the_kv_refuses(
    action: CreateObject | UpdateStatus | UpdateSpec | DeleteObject,
) -> None:
    with pytest.raises(ActionRefused):
        simulate_actions(created(), [action])


def test_second_write_at_the_same_revision_is_refused() -> None:
    status = TopicStatus(resolution=TopicResolution.PENDING)
    with pytest.raises(ActionRefused, match="not 1"):
        simulate_actions(
            created(),
            [
                UpdateSpec(Kind.TOPIC, "orders", 1, SPEC),
                UpdateStatus(Kind.TOPIC, "orders", 1, status),
            ],
        )


def test_delete_cascades_to_owned_objects() -> None:
    state = simulate_actions(created(), [DeleteObject(Kind.TOPIC, "orders")])
    assert state.topics == {}
    assert state.partitions == {}
