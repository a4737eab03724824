"""A pass's actions run many at once, but a topic's action waits for what came before it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from election.guard import Guard
from election.term import Term
from ha_sc.controllers.actions import Action, CreateObject, UpdateStatus
from ha_sc.controllers.write_waves import apply_actions, waves
from ha_sc.controllers.writer import ActionWriter, Outcome
from ha_sc.kv.api import BatchOp, BatchOutcomes, StaleGuard
from ha_sc.kv.memory import MemoryKv
from ha_sc.model import (
    Kind,
    ObjectMeta,
    OwnerRef,
    PartitionSpec,
    PartitionStatus,
    Topic,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    TopicStatus,
)
from ha_sc.model.codec import encode_value
from ha_sc.store import GlobalStore

OWNER = OwnerRef(kind="topics", key="orders")


def partition(n: int) -> CreateObject:
    return CreateObject(
        Kind.PARTITION, f"orders-{n}", PartitionSpec(leader=1, replicas=[1]), owner=OWNER
    )


def provisioned(revision: int = 1) -> UpdateStatus:
    return UpdateStatus(
        Kind.TOPIC, "orders", revision, TopicStatus(resolution=TopicResolution.PROVISIONED)
    )


def test_a_topic_action_starts_a_wave_that_its_partition_creates_join() -> None:
    other = CreateObject(
        Kind.PARTITION,
        "refunds-0",
        PartitionSpec(leader=1, replicas=[1]),
        owner=OwnerRef(kind="topics", key="refunds"),
    )
    online = UpdateStatus(Kind.PARTITION, "orders-0", 3, PartitionStatus())
    actions: list[Action] = [
        partition(0),
        partition(1),
        provisioned(),
        partition(2),
        partition(3),
        other,
        online,
    ]
    assert [[a.key for a in wave] for wave in waves(actions)] == [
        ["orders-0", "orders-1"],
        ["orders", "orders-2", "orders-3"],
        ["refunds-0", "orders-0"],
    ]
    assert [[a.key for a in w] for w in waves([provisioned(), other])] == [
        ["orders"],
        ["refunds-0"],
    ]


async def test_a_topic_status_and_its_partitions_go_in_one_batch_write() -> None:
    kv = SlowBatchKv()
    spec = TopicSpec(replicas=TopicReplicas.new_computed(3, 1))
    revision = await kv.create(Kind.TOPIC.value, "orders", encode_value(spec))
    cache = GlobalStore()
    meta = ObjectMeta(key="orders", revision=revision, create_revision=revision)
    cache.topics.apply_put(Topic(meta=meta, spec=spec, status=TopicStatus()))
    writer = ActionWriter(kv, cache)
    actions: list[Action] = [provisioned(revision), *(partition(n) for n in range(3))]

    await apply_actions(writer, actions, term_of(kv), batch=100)

    assert kv.batches == [["orders", "orders-0", "orders-1", "orders-2"]]
    entry = await kv.get(Kind.TOPIC.value, "orders")
    assert entry is not None
    assert b"Provisioned" in entry.value
    assert len((await kv.list(Kind.PARTITION.value)).entries) == 3


def test_a_second_action_on_one_key_starts_a_new_wave() -> None:
    actions: list[Action] = [partition(0), partition(1), partition(0)]
    assert [[a.key for a in wave] for wave in waves(actions)] == [
        ["orders-0", "orders-1"],
        ["orders-0"],
    ]
    assert waves([]) == []


class SlowKv(MemoryKv):
    """Each write takes a while; counts how many are in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = self.most_in_flight = 0
        self.order: list[str] = []

    async def create(self, kind: str, key: str, value: bytes, *, guard: Guard | None = None) -> int:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        self.order.append(key)
        return await super().create(kind, key, value, guard=guard)


class SlowBatchKv(SlowKv):
    """Each batch takes a while; records each batch's keys."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    async def write_batch(
        self, ops: Sequence[BatchOp], *, guard: Guard | None = None
    ) -> BatchOutcomes:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        self.batches.append([op.key for op in ops])
        return await super().write_batch(ops, guard=guard)


def term_of(kv: MemoryKv) -> Term:
    holder = kv.leases.acquire("sc", "sc-a")
    assert holder is not None
    return Term(Guard("sc", holder.epoch), valid_until=time.monotonic() + 60)


async def test_a_wave_runs_writes_concurrently_within_the_limit() -> None:
    kv = SlowKv()
    writer = ActionWriter(kv, GlobalStore())
    actions: list[Action] = [partition(n) for n in range(40)]
    actions.append(
        CreateObject(Kind.TOPIC, "orders", TopicSpec(replicas=TopicReplicas.new_computed(40, 1)))
    )

    await apply_actions(writer, actions, term_of(kv), in_flight=8, batch=1)

    assert kv.most_in_flight == 8
    assert kv.order[-1] == "orders"  # the topic after all its partitions
    assert len((await kv.list(Kind.PARTITION.value)).entries) == 40


async def test_a_refused_epoch_stops_the_pass_with_stale_guard() -> None:
    kv = MemoryKv()
    writer = ActionWriter(kv, GlobalStore())
    old = term_of(kv)
    holder = kv.leases.holder("sc")
    assert holder is not None
    kv.leases.transfer("sc", holder.epoch, "sc-b", "")
    with pytest.raises(StaleGuard):
        await apply_actions(writer, [partition(n) for n in range(5)], old)
    assert (await kv.list(Kind.PARTITION.value)).entries == ()


async def test_nothing_starts_once_the_term_has_ended() -> None:
    kv = MemoryKv()
    writer = ActionWriter(kv, GlobalStore())
    term = term_of(kv)
    term.end("lost")
    await apply_actions(writer, [partition(n) for n in range(5)], term)
    assert (await kv.list(Kind.PARTITION.value)).entries == ()


async def test_a_wave_goes_in_batches_several_in_flight_topic_after() -> None:
    kv = SlowBatchKv()
    writer = ActionWriter(kv, GlobalStore())
    actions: list[Action] = [partition(n) for n in range(40)]
    actions.append(
        CreateObject(Kind.TOPIC, "orders", TopicSpec(replicas=TopicReplicas.new_computed(40, 1)))
    )

    await apply_actions(writer, actions, term_of(kv), in_flight=3, batch=7)

    assert [len(batch) for batch in kv.batches] == [7, 7, 7, 7, 7, 5]
    assert sorted(key for batch in kv.batches for key in batch) == sorted(
        f"orders-{n}" for n in range(40)
    )
    assert kv.most_in_flight == 3
    assert kv.order == ["orders"]  # the topic alone, by a single write, after every batch
    assert len((await kv.list(Kind.PARTITION.value)).entries) == 40


async def test_a_stale_action_in_a_batch_leaves_the_others_applied() -> None:
    kv = MemoryKv()
    cache = GlobalStore()
    writer = ActionWriter(kv, cache)
    await kv.create(Kind.PARTITION.value, "orders-1", b"{}")
    term = term_of(kv)
    # orders-1 exists already; the status update names a revision the cache does not hold
    actions: list[Action] = [partition(0), partition(1), provisioned(revision=99), partition(2)]

    outcomes = await writer.apply_batch(actions, term.guard)

    assert outcomes == [Outcome.APPLIED, Outcome.STALE, Outcome.STALE, Outcome.APPLIED]
    keys = {e.key for e in (await kv.list(Kind.PARTITION.value)).entries}
    assert keys == {"orders-0", "orders-1", "orders-2"}
    assert (await kv.get(Kind.PARTITION.value, "orders-1")) is not None
    assert (await kv.list(Kind.TOPIC.value)).entries == ()


async def test_a_refused_epoch_fails_the_whole_batch() -> None:
    kv = MemoryKv()
    writer = ActionWriter(kv, GlobalStore())
    old = term_of(kv)
    holder = kv.leases.holder("sc")
    assert holder is not None
    kv.leases.transfer("sc", holder.epoch, "sc-b", "")
    with pytest.raises(StaleGuard):
        await writer.apply_batch([partition(n) for n in range(5)], old.guard)
    assert (await kv.list(Kind.PARTITION.value)).entries == ()


def status_of(topic: str) -> UpdateStatus:
    return UpdateStatus(Kind.TOPIC, topic, 1, TopicStatus(resolution=TopicResolution.PENDING))


def test_topic_actions_next_to_each_other_share_a_wave() -> None:
    actions: list[Action] = [
        partition(0),
        status_of("a"),
        status_of("b"),
        partition(1),
        status_of("c"),
        status_of("c"),
    ]
    assert [[a.key for a in wave] for wave in waves(actions)] == [
        ["orders-0"],
        ["a", "b"],
        ["orders-1"],
        ["c"],
        ["c"],
    ]
