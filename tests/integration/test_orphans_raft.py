"""On the Raft store, the leader's controllers collect partitions whose owner is gone:
three real pysyncobj nodes, the cache fed by their watch, the controller loop under a
term of the replicated lease table.

A delete on Raft cascades inside the state machine, so nothing deletes a topic and
leaves its partitions; what a hand can still do is write partitions to the store that
name an owner that is gone, or an earlier topic of a name now taken by another (as a
copy of an older store would bring back). Those are collected on the first pass of a
new term, without any event, fenced by its epoch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from election.guard import Guard
from election.term import Term
from ha_sc.controllers.loop import ControllerLoop
from ha_sc.controllers.writer import ActionWriter
from ha_sc.kv.api import StaleGuard
from ha_sc.kv.raft import RaftKv
from ha_sc.model import (
    Endpoint,
    Kind,
    OwnerRef,
    PartitionSpec,
    SpuSpec,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    encode_value,
)
from ha_sc.store import GlobalStore, start_dispatchers
from ha_sc.tasks import Supervisor
from tests.harnesses import RaftHarness
from tests.waiting import eventually

pytestmark = [pytest.mark.raft]

SPUS = {5001, 5002}
ELECTION = "sc"


class Leader:
    """The cache of one Raft node and controller loops under terms of its lease table."""

    def __init__(self, node: RaftKv) -> None:
        self.kv = node
        self.cache = GlobalStore()
        self.supervisor = Supervisor()

    async def term(self, candidate: str) -> Term:
        """A term won by ``candidate`` (taking over from whoever held the lease)."""
        node = self.kv
        holder = node.leases.holder(ELECTION)
        if holder is None:
            won = await node.submit(node.leases.acquire, ELECTION, candidate, "", "")
        else:
            won = await node.submit(node.leases.transfer, ELECTION, holder.epoch, candidate, "", "")
        assert won is not None
        return Term(Guard(ELECTION, won.epoch), valid_until=time.monotonic() + 3600)

    def loop(self) -> ControllerLoop:
        return ControllerLoop(
            self.cache, ActionWriter(self.kv, self.cache), connected=lambda: SPUS, resync=0.05
        )

    def provisioned(self, topic: str, partitions: int) -> bool:
        cached = self.cache.topics.get(topic)
        if cached is None or cached.status.resolution is not TopicResolution.PROVISIONED:
            return False
        owned = [
            p
            for p in self.cache.partitions.objects()
            if p.meta.owner is not None
            and p.meta.owner.key == topic
            and p.meta.owner.create_revision == cached.meta.create_revision
        ]
        return len(owned) == partitions


@pytest.fixture
async def leader(tmp_path: Path) -> AsyncIterator[Leader]:
    harness = RaftHarness(tmp_path)
    await harness.start()
    one = Leader(harness.nodes[0])
    start_dispatchers(one.cache, one.kv, one.supervisor)
    try:
        yield one
    finally:
        await one.supervisor.stop()
        await harness.close()


async def add_spus(kv: RaftKv) -> None:
    for spu_id in sorted(SPUS):
        spec = SpuSpec(
            id=spu_id,
            public_endpoint=Endpoint(host="127.0.0.1", port=spu_id),
            private_endpoint=Endpoint(host="127.0.0.1", port=spu_id + 1000),
        )
        await kv.create(Kind.SPU.value, f"spu-{spu_id}", encode_value(spec))


async def create_topic(kv: RaftKv, name: str, partitions: int) -> int:
    spec = TopicSpec(replicas=TopicReplicas.new_computed(partitions, 2))
    return await kv.create(Kind.TOPIC.value, name, encode_value(spec))


async def put_by_hand(kv: RaftKv, key: str, owner: OwnerRef) -> int:
    spec = PartitionSpec(leader=5001, replicas=[5001, 5002])
    return await kv.create(Kind.PARTITION.value, key, encode_value(spec, owner=owner))


async def run_until(leader: Leader, term: Term, condition: Callable[[], bool]) -> None:
    task = asyncio.create_task(leader.loop().run(term), name="controllers")
    try:
        await eventually(condition)
    finally:
        term.end("test over")
        await asyncio.wait_for(task, 5)


async def test_partitions_naming_a_gone_or_earlier_owner_are_collected_by_a_new_term(
    leader: Leader, caplog: pytest.LogCaptureFixture
) -> None:
    kv = leader.kv
    await add_spus(kv)
    first_orders = await create_topic(kv, "orders", 2)
    await run_until(leader, await leader.term("sc-1"), lambda: leader.provisioned("orders", 2))

    # the topic deleted (its partitions with it); by hand, a partition in the form of
    # an older version (owner by name alone); the topic created again; then, by hand,
    # a partition of the first "orders" and one of a topic that is gone
    orders = leader.cache.topics.get("orders")
    assert orders is not None
    await kv.delete(Kind.TOPIC.value, "orders", expected_revision=orders.meta.revision)
    await put_by_hand(kv, "orders-1", OwnerRef(kind="topics", key="orders"))
    second_orders = await create_topic(kv, "orders", 3)
    assert second_orders > first_orders
    earlier = OwnerRef(kind="topics", key="orders", create_revision=first_orders)
    await put_by_hand(kv, "orders-0", earlier)
    gone = await put_by_hand(kv, "ghost-0", OwnerRef(kind="topics", key="ghost"))
    await eventually(lambda: leader.cache.partitions.revision >= gone)

    # a deposed leader's pass changes nothing: its deletes are refused for its epoch
    deposed = await leader.term("sc-1")
    current = await leader.term("sc-2")
    with pytest.raises(StaleGuard):
        await asyncio.wait_for(leader.loop().run(deposed), 10)
    assert {"orders-0", "orders-1", "ghost-0"} <= set(leader.cache.partitions.snapshot())

    # the new term's first pass finds them from the cache alone: collected, not adopted
    caplog.set_level("INFO", logger="ha_sc.controllers")
    await run_until(
        leader,
        current,
        lambda: leader.provisioned("orders", 3) and "ghost-0" not in leader.cache.partitions,
    )
    topic = leader.cache.topics.get("orders")
    assert topic is not None and topic.meta.create_revision == second_orders
    for partition in leader.cache.partitions.objects():
        assert partition.meta.create_revision > second_orders
        assert partition.meta.owner == OwnerRef(
            kind="topics", key="orders", create_revision=second_orders
        )
    assert sorted(leader.cache.partitions.snapshot()) == ["orders-0", "orders-1", "orders-2"]
    messages = caplog.text
    assert "partition ghost-0 orphaned: owner topic ghost gone; deleted (epoch" in messages
    assert f"partition orders-0 orphaned: owner topic orders created {first_orders}" in messages
    assert "partition orders-1 orphaned: owner topic orders gone, partition created" in messages
