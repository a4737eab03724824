"""The leader's reconciling loop on a real cache fed by dispatchers, over the memory KV."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Generator
from typing import Any

import pytest

from election.guard import Guard
from election.term import Term
from ha_sc.controllers import UpdateStatus
from ha_sc.controllers import loop as controller_loop
from ha_sc.controllers.cluster_plan import PassPlan
from ha_sc.controllers.loop import ControllerLoop
from ha_sc.controllers.plan_scope import PlanScope
from ha_sc.controllers.settings import PacingSettings
from ha_sc.controllers.writer import ActionWriter
from ha_sc.kv.api import BatchOutcomes, KvUnavailable, StaleGuard
from ha_sc.kv.memory import MemoryKv
from ha_sc.model import (
    Endpoint,
    Kind,
    PartitionResolution,
    SpuResolution,
    SpuSpec,
    SpuStatus,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    encode_value,
)
from ha_sc.protocol import ReplicaReport, StatusReport
from ha_sc.store import GlobalStore, start_dispatchers
from ha_sc.tasks import Supervisor
from tests.waiting import eventually


class Cluster:
    def __init__(self) -> None:
        self.kv = MemoryKv()
        self.cache = GlobalStore()
        self.supervisor = Supervisor()
        self.connected: set[int] | None = set()

    def term(self) -> Term:
        holder = self.kv.leases.acquire("sc", "replica-a")
        assert holder is not None
        return Term(Guard("sc", holder.epoch), valid_until=time.monotonic() + 3600)

    def loop(
        self,
        *,
        resync: float = 0.05,
        wake: asyncio.Event | None = None,
        min_interval: float = 0.05,
        pacing: PacingSettings | None = None,
    ) -> ControllerLoop:
        writer = ActionWriter(self.kv, self.cache)
        return ControllerLoop(
            self.cache,
            writer,
            connected=lambda: self.connected,
            resync=resync,
            wake=wake,
            min_interval=min_interval,
            pacing=pacing or PacingSettings(),
        )

    async def add_spu(self, spu_id: int, status: SpuStatus | None = None) -> None:
        spec = SpuSpec(
            id=spu_id,
            public_endpoint=Endpoint(host="127.0.0.1", port=spu_id),
            private_endpoint=Endpoint(host="127.0.0.1", port=spu_id + 1000),
        )
        await self.kv.create(Kind.SPU.value, f"spu-{spu_id}", encode_value(spec, status))

    async def add_topic(self, name: str, partitions: int, replication: int) -> None:
        spec = TopicSpec(replicas=TopicReplicas.new_computed(partitions, replication))
        await self.kv.create(Kind.TOPIC.value, name, encode_value(spec))

    async def until_online(self, key: str) -> None:
        await eventually(
            lambda: (
                (p := self.cache.partitions.get(key)) is not None
                and p.status.resolution is PartitionResolution.ONLINE
            ),
            what=f"partition {key} online",
        )


def steps_of(plan: PassPlan) -> Generator[None, None, PassPlan]:
    """A plan in one step, as the loop's ``_plan`` gives it."""
    yield
    return plan


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    c = Cluster()
    start_dispatchers(c.cache, c.kv, c.supervisor)
    yield c
    await c.supervisor.stop()


async def test_a_topic_is_provisioned_with_its_partitions(cluster: Cluster) -> None:
    for spu_id in (5001, 5002, 5003):
        await cluster.add_spu(spu_id)
    cluster.connected = {5001, 5002, 5003}
    spec = TopicSpec(replicas=TopicReplicas.new_computed(3, 2))
    await cluster.kv.create(Kind.TOPIC.value, "orders", encode_value(spec))
    term = cluster.term()
    task = asyncio.create_task(cluster.loop().run(term), name="controllers")
    try:
        await eventually(
            lambda: (
                (t := cluster.cache.topics.get("orders")) is not None
                and t.status.resolution is TopicResolution.PROVISIONED
                and len(cluster.cache.partitions) == 3
                and all(
                    p.status.resolution is PartitionResolution.ONLINE
                    for p in cluster.cache.partitions.objects()
                )
            )
        )
        leaders = sorted(p.spec.leader for p in cluster.cache.partitions.objects())
        assert leaders == [5001, 5002, 5003]
        spus = cluster.cache.spus.objects()
        assert {s.status.resolution.value for s in spus} == {"Online"}
    finally:
        term.end("test over")
        await asyncio.wait_for(task, 2)


async def test_a_partition_whose_leader_spu_goes_offline_gets_a_new_leader(
    cluster: Cluster,
) -> None:
    for spu_id in (5001, 5002, 5003):
        await cluster.add_spu(spu_id)
    cluster.connected = {5001, 5002, 5003}
    await cluster.add_topic("orders", 1, 2)
    term = cluster.term()
    task = asyncio.create_task(cluster.loop().run(term), name="controllers")
    try:
        await eventually(lambda: len(cluster.cache.partitions) == 1)
        first = cluster.cache.partitions.objects()[0]
        old_leader = first.spec.leader
        cluster.connected = {5001, 5002, 5003} - {old_leader}
        await eventually(
            lambda: (
                (p := cluster.cache.partitions.get("orders-0")) is not None
                and p.spec.leader != old_leader
                and p.status.resolution is PartitionResolution.ONLINE
            )
        )
        moved = cluster.cache.partitions.get("orders-0")
        assert moved is not None and moved.spec.leader in first.spec.replicas
    finally:
        term.end("test over")
        await asyncio.wait_for(task, 2)


@pytest.mark.looptime
async def test_an_spu_going_away_wakes_the_loop_before_its_resync(cluster: Cluster) -> None:
    """A lost SPU connection is not a cache change: the loop is woken for it rather than
    noticing it at its next periodic pass (here an hour away)."""
    for spu_id in (5001, 5002):
        await cluster.add_spu(spu_id)
    cluster.connected = {5001, 5002}
    await cluster.add_topic("orders", 1, 2)
    wake = asyncio.Event()
    term = cluster.term()
    loop = cluster.loop(resync=3600.0, wake=wake)
    task = asyncio.create_task(loop.run(term), name="controllers")
    try:
        await cluster.until_online("orders-0")
        await asyncio.sleep(0.2)  # the loop has settled and waits for a change (loop time)
        partition = cluster.cache.partitions.get("orders-0")
        assert partition is not None
        old_leader = partition.spec.leader
        passes = loop.passes
        cluster.connected = {5001, 5002} - {old_leader}
        wake.set()
        await eventually(
            lambda: (
                (p := cluster.cache.partitions.get("orders-0")) is not None
                and p.spec.leader != old_leader
            ),
            timeout=2.0,
        )
        assert loop.passes > passes
    finally:
        term.end("test over")
        await asyncio.wait_for(task, 2)


async def test_a_change_after_a_pass_that_wrote_nothing_is_planned_at_once(
    cluster: Cluster,
) -> None:
    """``min_interval`` gathers the echoes of a pass's own writes; a pass that wrote
    nothing has none, so a topic created just after it is provisioned without waiting
    out the interval (here a minute)."""
    online = SpuStatus(resolution=SpuResolution.ONLINE)
    for spu_id in (5001, 5002):
        await cluster.add_spu(spu_id, online)
    cluster.connected = {5001, 5002}
    await eventually(lambda: len(cluster.cache.spus) == 2)
    term = cluster.term()
    loop = cluster.loop(resync=3600.0, min_interval=60.0)
    task = asyncio.create_task(loop.run(term), name="controllers")
    try:
        await eventually(lambda: loop.passes == 1, what="a first pass, with nothing to do")
        await cluster.add_topic("orders", 2, 2)
        await cluster.until_online("orders-1")
        topic = cluster.cache.topics.get("orders")
        assert topic is not None and topic.status.resolution is TopicResolution.PROVISIONED
        # one pass provisioned it; its echoes in the cache, the next pass follows at
        # once (it finds nothing to do), not a minute later
        await eventually(lambda: loop.passes == 3, what="a pass after the echoes")
    finally:
        term.end("test over")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_new_partition_leader_is_online_on_the_pass_right_after_its_echo(
    cluster: Cluster,
) -> None:
    """A lost leader SPU costs two passes (the spec gets a new leader, then the status
    goes Online): the second waits for the first's echoes, not ``min_interval`` (here a
    minute)."""
    online = SpuStatus(resolution=SpuResolution.ONLINE)
    for spu_id in (5001, 5002, 5003):
        await cluster.add_spu(spu_id, online)
    cluster.connected = {5001, 5002, 5003}
    await cluster.add_topic("orders", 1, 2)
    wake = asyncio.Event()
    term = cluster.term()
    loop = cluster.loop(resync=3600.0, min_interval=60.0, wake=wake)
    task = asyncio.create_task(loop.run(term), name="controllers")
    try:
        await cluster.until_online("orders-0")
        await eventually(lambda: loop.passes == 2, what="a pass after the echoes")
        first = cluster.cache.partitions.get("orders-0")
        assert first is not None
        old_leader = first.spec.leader
        cluster.connected = {5001, 5002, 5003} - {old_leader}
        wake.set()
        await eventually(
            lambda: (
                (p := cluster.cache.partitions.get("orders-0")) is not None
                and p.spec.leader != old_leader
                and p.status.resolution is PartitionResolution.ONLINE
                and p.status.leader.spu == p.spec.leader
            ),
            what="orders-0 Online with its new leader",
        )
    finally:
        term.end("test over")
        task.cancel()  # it waits out min_interval after two passes that wrote
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.looptime
async def test_passes_that_keep_writing_come_once_per_min_interval(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan that writes on every pass (here the SPU's status, rewritten each time)
    would loop at the speed of its echoes; after two writing passes in a row, each
    waits ``min_interval`` (0.05 s). The sleeps are loop time."""
    await cluster.add_spu(5001)
    cluster.connected = {5001}
    await eventually(lambda: len(cluster.cache.spus) == 1)
    flip = iter([SpuResolution.ONLINE, SpuResolution.OFFLINE] * 1000)

    def restless(**kwargs: Any) -> Any:
        spu = cluster.cache.spus.get("spu-5001")
        assert spu is not None
        status = SpuStatus(resolution=next(flip))
        return steps_of(
            PassPlan([UpdateStatus(Kind.SPU, "spu-5001", spu.meta.revision, status)], frozenset())
        )

    monkeypatch.setattr(controller_loop, "_plan", restless)
    term = cluster.term()
    loop = cluster.loop(resync=3600.0, min_interval=0.05)
    task = asyncio.create_task(loop.run(term), name="controllers")
    try:
        await asyncio.sleep(1.0)
        assert 10 <= loop.passes <= 25  # unpaced: one per echo, hundreds
    finally:
        term.end("test over")
        await asyncio.wait_for(task, 2)


@pytest.mark.looptime
async def test_full_passes_are_paced_by_how_long_planning_everything_takes(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan of every object taking 0.1 s (a store of ~25k partitions), with resync
    0.05 s and full passes due every 0.2 s: a pass over everything comes no sooner than
    every ~1 s (10 plans), not every 0.2 s. The sleeps are loop time (the plan's 0.1 s is
    not, so a loaded machine makes it longer and the passes rarer)."""
    await cluster.add_spu(5001)
    cluster.connected = {5001}
    await cluster.add_topic("orders", 1, 1)
    real_plan = controller_loop._plan
    planned: list[PlanScope | None] = []

    def slow_plan(**kwargs: Any) -> Any:
        planned.append(kwargs["scope"])
        if kwargs["scope"] is None:
            time.sleep(0.1)
        return real_plan(**kwargs)

    term = cluster.term()
    loop = cluster.loop(resync=0.05, pacing=PacingSettings(full_resync=0.2))
    task = asyncio.create_task(loop.run(term), name="controllers")
    try:
        await cluster.until_online("orders-0")
        await asyncio.sleep(0.3)  # settled
        monkeypatch.setattr(controller_loop, "_plan", slow_plan)
        await asyncio.sleep(1.0)  # a slow plan has run
        planned.clear()
        await asyncio.sleep(12.0)
        assert loop.full_plan_seconds >= 0.1
        assert 1 <= planned.count(None) <= 13  # 10 plans (>= 1 s) apart; unpaced: 60
    finally:
        term.end("test over")
        await asyncio.wait_for(task, 2)


async def test_a_deposed_leader_stops_at_its_first_refused_write(cluster: Cluster) -> None:
    await cluster.add_spu(5001)
    term = cluster.term()
    successor = cluster.kv.leases.transfer("sc", term.epoch, "replica-b", "")
    assert successor is not None
    cluster.connected = {5001}
    with pytest.raises(StaleGuard):
        await asyncio.wait_for(cluster.loop().run(term), 2)
    spu = cluster.cache.spus.get("spu-5001")
    assert spu is not None and spu.status.resolution.value == "Init"  # nothing got through


async def test_no_spu_health_verdicts_during_the_grace_period(cluster: Cluster) -> None:
    await cluster.add_spu(5001)
    cluster.connected = None
    term = cluster.term()
    loop = cluster.loop()
    task = asyncio.create_task(loop.run(term), name="controllers")
    try:
        await eventually(lambda: loop.passes >= 3)
        spu = cluster.cache.spus.get("spu-5001")
        assert spu is not None and spu.status.resolution.value == "Init"
    finally:
        term.end("test over")
        await asyncio.wait_for(task, 2)


class FlakyKv(MemoryKv):
    """A memory KV whose first ``failures`` writes cannot be committed."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def _maybe_fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise KvUnavailable("no majority (test)")

    async def create(self, *args: Any, **kwargs: Any) -> int:
        if kwargs.get("guard") is not None:
            self._maybe_fail()
        return await super().create(*args, **kwargs)

    async def update(self, *args: Any, **kwargs: Any) -> int:
        self._maybe_fail()
        return await super().update(*args, **kwargs)

    async def write_batch(self, *args: Any, **kwargs: Any) -> BatchOutcomes:
        self._maybe_fail()
        return await super().write_batch(*args, **kwargs)


@pytest.mark.looptime
async def test_an_unavailable_store_costs_a_pass_not_the_leader() -> None:
    cluster = Cluster()
    cluster.kv = FlakyKv(failures=0)
    start_dispatchers(cluster.cache, cluster.kv, cluster.supervisor)
    try:
        for spu_id in (5001, 5002):
            await cluster.add_spu(spu_id)
        cluster.connected = {5001, 5002}
        await cluster.add_topic("orders", 4, 2)
        cluster.kv.failures = 3
        term = cluster.term()
        task = asyncio.create_task(cluster.loop().run(term), name="controllers")
        try:
            await eventually(
                lambda: (
                    (t := cluster.cache.topics.get("orders")) is not None
                    and t.status.resolution is TopicResolution.PROVISIONED
                    and len(cluster.cache.partitions) == 4
                ),
                timeout=10,
            )
            assert cluster.kv.failures == 0 and not task.done()
        finally:
            term.end("test over")
            await asyncio.wait_for(task, 2)
    finally:
        await cluster.supervisor.stop()


@pytest.mark.looptime
async def test_an_idle_loop_plans_nothing_between_full_passes(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settled and left alone, the loop still looks every ``resync`` (0.05 s), but plans
    only the full pass due every ``full_resync`` (1 s). The sleeps are loop time."""
    await cluster.add_spu(5001)
    cluster.connected = {5001}
    await cluster.add_topic("orders", 2, 1)
    real_plan = controller_loop._plan
    planned: list[PlanScope | None] = []

    def recorded(**kwargs: Any) -> Any:
        planned.append(kwargs["scope"])
        return real_plan(**kwargs)

    term = cluster.term()
    loop = cluster.loop(resync=0.05, pacing=PacingSettings(full_resync=1.0))
    task = asyncio.create_task(loop.run(term), name="controllers")
    try:
        await cluster.until_online("orders-1")
        await asyncio.sleep(0.5)  # settled
        monkeypatch.setattr(controller_loop, "_plan", recorded)
        passes = loop.passes
        await asyncio.sleep(3.0)
        assert loop.passes - passes >= 20  # it looked
        assert 2 <= len(planned) <= 4
        assert planned == [None] * len(planned)  # and planned only the full passes
    finally:
        term.end("test over")
        await asyncio.wait_for(task, 2)


async def test_offsets_an_spu_reports_reach_the_partition_without_a_full_pass(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report whose offsets moved puts its partition in the next pass's scope."""
    online = SpuStatus(resolution=SpuResolution.ONLINE)
    await cluster.add_spu(5001, online)
    cluster.connected = {5001}
    await cluster.add_topic("orders", 2, 1)
    report = StatusReport(spu_id=5001)
    real_plan = controller_loop._plan
    planned: list[PlanScope | None] = []

    def recorded(**kwargs: Any) -> Any:
        planned.append(kwargs["scope"])
        return real_plan(**kwargs)

    term = cluster.term()
    loop = ControllerLoop(
        cluster.cache,
        ActionWriter(cluster.kv, cluster.cache),
        connected=lambda: cluster.connected,
        resync=0.05,
        reports=lambda: [report],
        pacing=PacingSettings(full_resync=3600.0),
    )
    task = asyncio.create_task(loop.run(term), name="controllers")
    try:
        await cluster.until_online("orders-1")
        await asyncio.sleep(0.3)  # settled
        monkeypatch.setattr(controller_loop, "_plan", recorded)
        report = StatusReport(
            spu_id=5001, replicas=[ReplicaReport(partition="orders-1", leo=7, hw=7, lsr=0)]
        )
        await eventually(
            lambda: (
                (p := cluster.cache.partitions.get("orders-1")) is not None
                and p.status.leader.leo == 7
            ),
            what="orders-1 with the offsets reported",
        )
        assert planned and None not in planned
        assert all(scope is not None and "orders-0" not in scope.partitions for scope in planned)
    finally:
        term.end("test over")
        await asyncio.wait_for(task, 2)
