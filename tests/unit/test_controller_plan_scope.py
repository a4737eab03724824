"""A pass over what changed plans what a pass over everything would (``plan_scope``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ha_sc.controllers import (
    Action,
    CreateObject,
    DeleteObject,
    ReportedOffsets,
    SimulatedCluster,
    UpdateStatus,
    cluster_plan,
    simulate_actions,
    spu_load,
)
from ha_sc.controllers.cluster_plan import PassPlan, plan_steps, run_steps
from ha_sc.controllers.plan_scope import PlanScope, carried_over, scope_of_changes
from ha_sc.controllers.topics.validation import DEFAULT_LIMITS, TopicLimits
from ha_sc.model import (
    Kind,
    ObjectMeta,
    PartitionResolution,
    PartitionStatus,
    ReplicaStatus,
    SpuResolution,
    Topic,
    TopicReplicas,
    TopicSpec,
    TopicStatus,
)
from ha_sc.store.global_store import partition_topic
from tests.stored_spus import stored_spu

SPUS = (5001, 5002, 5003)
TOPICS = ("orders", "payments", "refunds")
PARTITIONS = [f"{t}-{n}" for t in TOPICS for n in range(3)]
LIMITS = TopicLimits(max_partitions_per_topic=3, max_partitions_in_cluster=5)
"""Caps low enough that a topic deleted lets another one in."""
Reported = Mapping[str, Mapping[int, ReportedOffsets]]


def start(online: set[int], topics: dict[str, tuple[int, int]]) -> SimulatedCluster:
    spus = [
        stored_spu(i, SpuResolution.ONLINE if i in online else SpuResolution.OFFLINE) for i in SPUS
    ]
    stored = [
        Topic(
            meta=ObjectMeta(key=name, revision=1, create_revision=1),
            spec=TopicSpec(replicas=TopicReplicas.new_computed(count, factor)),
            status=TopicStatus(),
        )
        for name, (count, factor) in topics.items()
    ]
    return SimulatedCluster.of(
        [*((Kind.SPU, s) for s in spus), *((Kind.TOPIC, t) for t in stored)], revision=1
    )


def plan(
    state: SimulatedCluster,
    online: set[int],
    reported: Reported,
    scope: PlanScope | None = None,
    limits: TopicLimits = LIMITS,
) -> PassPlan:
    return run_steps(
        plan_steps(
            spus=state.spus,
            topics=state.topics,
            partitions=state.partitions,
            connected=online,
            reported=reported,
            topics_revision=state.revision,
            partitions_revision=state.revision,
            limits=limits,
            scope=scope,
        )
    )


def change(state: SimulatedCluster, what: tuple[str, int, int]) -> SimulatedCluster:
    """One change made by someone else than the pass: a partition's status, a partition
    or a topic deleted, a topic created (again, when it was deleted)."""
    verb, which, value = what
    partitions = sorted(state.partitions.values(), key=lambda p: p.key)
    topics = sorted(state.topics.values(), key=lambda t: t.key)
    actions: list[Action] = []
    if verb == "status" and partitions:
        p = partitions[which % len(partitions)]
        resolution = list(PartitionResolution)[value % len(PartitionResolution)]
        leader = ReplicaStatus(spu=p.spec.leader, leo=value, hw=value)
        status = PartitionStatus(resolution=resolution, leader=leader)
        actions = [UpdateStatus(Kind.PARTITION, p.key, p.meta.revision, status)]
    elif verb == "delete-partition" and partitions:
        p = partitions[which % len(partitions)]
        actions = [DeleteObject(Kind.PARTITION, p.key, p.meta.revision)]
    elif verb == "delete-topic" and topics:
        t = topics[which % len(topics)]
        actions = [DeleteObject(Kind.TOPIC, t.key, t.meta.revision)]
    elif verb == "create-topic":
        name = TOPICS[which % len(TOPICS)]
        if name not in state.topics:
            spec = TopicSpec(replicas=TopicReplicas.new_computed(1 + value % 3, 1 + value % 2))
            actions = [CreateObject(Kind.TOPIC, name, spec)]
    return simulate_actions(state, actions)


def without_spu_writes(actions: list[Action]) -> Counter[str]:
    return Counter(repr(a) for a in actions if a.kind is not Kind.SPU)


offsets = st.dictionaries(
    st.sampled_from(PARTITIONS),
    st.dictionaries(
        st.sampled_from(SPUS),
        st.builds(ReportedOffsets, leo=st.integers(0, 3), hw=st.integers(0, 3)),
        max_size=2,
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None)  # no timing: the machine is shared
@given(
    online=st.sets(st.sampled_from(SPUS)),
    topics=st.dictionaries(
        st.sampled_from(TOPICS),
        st.tuples(st.integers(1, 3), st.integers(1, 2)),
        max_size=3,
    ),
    passes_before=st.integers(0, 3),
    landed=st.booleans(),
    changes=st.lists(
        st.tuples(
            st.sampled_from(["status", "delete-partition", "delete-topic", "create-topic"]),
            st.integers(0, 10),
            st.integers(0, 10),
        ),
        max_size=3,
    ),
    reported_before=offsets,
    reported_now=offsets,
)
def test_a_pass_over_what_changed_plans_what_a_full_pass_would(
    online: set[int],
    topics: dict[str, tuple[int, int]],
    passes_before: int,
    landed: bool,
    changes: list[tuple[str, int, int]],
    reported_before: Reported,
    reported_now: Reported,
) -> None:
    """From any state a full pass planned (settled or not; its writes landed or lost),
    after any changes by others and any offsets reported, the pass over what changed,
    what the last pass wrote and the topics not settled plans the same writes as a pass
    over every object (the SPUs' own writes aside: an SPU change makes a full pass)."""
    state = start(online, topics)
    for _ in range(passes_before):  # bounded: a state part way through settling
        state = simulate_actions(state, plan(state, online, reported_before).actions)
    before = state
    last = plan(before, online, reported_before)
    if landed:
        state = simulate_actions(state, last.actions)
    for what in changes:
        state = change(state, what)
    topics_changed = {
        key
        for key in before.topics.keys() | state.topics.keys()
        if (was := before.topics.get(key)) is None
        or (now := state.topics.get(key)) is None
        or was.meta.revision != now.meta.revision
    }
    partitions_changed = [
        p
        for p in state.partitions.values()
        if (was := before.partitions.get(p.key)) is None or was.meta.revision != p.meta.revision
    ]

    def keys_in(topic: str) -> list[str]:
        return [key for key in state.partitions if partition_topic(key) == topic]

    scope = scope_of_changes(
        carry=carried_over(last.actions, last.undecided),
        topics_changed=topics_changed,
        partitions_changed=partitions_changed,
        partitions_deleted=[k for k in before.partitions if k not in state.partitions],
        before=before.partitions,
        topics=state.topics.values(),
        keys_in=keys_in,
        moved={
            key
            for key in reported_before.keys() | reported_now.keys()
            if reported_before.get(key) != reported_now.get(key)
        },
    )
    full = plan(state, online, reported_now)
    scoped = plan(state, online, reported_now, scope)
    assert all(a.kind is not Kind.SPU for a in scoped.actions)
    assert without_spu_writes(scoped.actions) == without_spu_writes(full.actions)


def test_an_idle_store_needs_no_plan() -> None:
    """Settled, nothing changed, no offsets moved: the scope is empty."""
    online = set(SPUS)
    state = start(online, {"orders": (3, 2)})
    for _ in range(3):
        state = simulate_actions(state, plan(state, online, {}).actions)
    last = plan(state, online, {})
    assert last.actions == []
    scope = scope_of_changes(
        carry=carried_over(last.actions, last.undecided),
        topics_changed=(),
        partitions_changed=(),
        partitions_deleted=(),
        before=state.partitions,
        topics=state.topics.values(),
        keys_in=lambda t: [k for k in state.partitions if partition_topic(k) == t],
    )
    assert scope.is_empty


def test_a_plan_in_slices_plans_what_one_in_one_go_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """``plan_steps`` pauses every ``SLICE`` partitions (judging owners, counting load,
    reducing); the writes and the undecided are the same whatever the slice."""
    online = {5001, 5002, 5003}
    state = start(online, {"orders": (6, 2), "payments": (5, 1), "refunds": (4, 2)})
    state = simulate_actions(state, plan(state, online, {}, limits=DEFAULT_LIMITS).actions)
    changes = [("delete-partition", 7, 0), ("delete-topic", 2, 0), ("create-topic", 2, 2)]
    for what in changes:  # a partition to create again, a topic to place among the rest
        state = change(state, what)
    whole = plan(state, online, {}, limits=DEFAULT_LIMITS)
    assert whole.actions  # something to decide
    monkeypatch.setattr(cluster_plan, "SLICE", 2)
    steps = cluster_plan.plan_steps(
        spus=state.spus,
        topics=state.topics,
        partitions=state.partitions,
        connected=online,
        topics_revision=state.revision,
        partitions_revision=state.revision,
    )
    pauses = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            sliced: PassPlan = done.value
            break
        pauses += 1
    assert pauses >= len(state.partitions) // 2
    assert sliced.actions == whole.actions
    assert sliced.undecided == whole.undecided
    counted = cluster_plan.run_steps(cluster_plan._load(state.partitions, frozenset()))
    assert counted == spu_load(state.partitions.values())  # what placing reads, counted in slices
