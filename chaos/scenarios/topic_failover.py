"""A topic created while the SC leader dies: created exactly once, provisioned, with
exactly the partitions asked for. The client retries as a user would (a 409 on a
retry means an earlier attempt got through)."""

from __future__ import annotations

import asyncio
import time

from chaos.faults.base import Fault
from chaos.faults.network import Blackhole
from chaos.faults.process import Kill, Pause
from chaos.scenarios.control_plane import kv_links
from chaos.scenarios.scenario import FaultContext, Scenario
from ha_sc.client import ApiError, TopicReplicas, TopicResolution, TopicSpec

TOPIC = "chaos-created"
PAUSED_TOPIC = "chaos-created-paused"
ISOLATED_TOPIC = "chaos-created-isolated"
PARTITIONS = 2
ATTEMPTS = 10


async def topic_during_failover(ctx: FaultContext) -> None:
    leader, epoch = await ctx.leader_member()
    spec = TopicSpec(replicas=TopicReplicas.new_computed(PARTITIONS, 2))
    attempts: list[str] = []
    async with ctx.injector.applied(Kill(leader)):
        async with ctx.cluster.admin(timeout=5.0) as client:
            for _ in range(ATTEMPTS):
                started = time.monotonic()
                try:
                    await client.create_topic(TOPIC, spec, wait=10.0)
                    attempts.append("created")
                    break
                except ApiError as error:
                    attempts.append(f"{error.status}: {error.message}")
                    if error.status == 409:
                        break  # an earlier attempt got through
                    await asyncio.sleep(max(0.0, 0.5 - (time.monotonic() - started)))
        await ctx.new_leader(epoch)
        await ctx.hold()
    ctx.notes["create_attempts"] = attempts
    await check_created_once(ctx, TOPIC, PARTITIONS)


async def check_created_once(ctx: FaultContext, topic: str, partitions: int) -> None:
    """Expect ``topic`` there exactly once, provisioned, with ``partitions`` partitions."""
    await ctx.leader()
    async with ctx.cluster.admin(timeout=5.0) as client:
        topics = [t for t in await client.list_topics() if t.key == topic]
        found = sorted(p.key for p in await client.list_partitions(topic))
    wrong: list[object] = []
    if len(topics) != 1:
        wrong.append(f"{len(topics)} topics named {topic}")
    elif topics[0].status.resolution is not TopicResolution.PROVISIONED:
        wrong.append(f"topic {topics[0].status.resolution}")
    expected = [f"{topic}-{i}" for i in range(partitions)]
    if found != expected:
        wrong.append(f"partitions {found}, expected {expected}")
    ctx.expect(
        "topic_not_created_once",
        f"the topic created during the failover is not there exactly once with {partitions} "
        "partitions, provisioned",
        len(wrong),
        wrong,
    )


async def create_during_sigstop(ctx: FaultContext) -> None:
    """One create (replication 2) sent right after the leader's SIGSTOP."""
    leader, epoch = await ctx.leader_member()
    await _create_during(ctx, Pause(leader), epoch, PAUSED_TOPIC)


async def create_during_isolation(ctx: FaultContext) -> None:
    """One create (replication 2) sent right after the leader is cut from the KV and from
    every SPU (its public API still reachable, as a client on its host would see it)."""
    name, epoch = await ctx.leader()
    cut = Blackhole(kv_links(ctx, name) + ctx.cluster.links.sc_links_to(name),
                    label=f"{name} from KV and SPUs")  # fmt: skip
    await _create_during(ctx, cut, epoch, ISOLATED_TOPIC)


async def _create_during(ctx: FaultContext, fault: Fault, epoch: int, topic: str) -> None:
    """One create sent right after ``fault``, no retry by the scenario: it must end created
    and provisioned, not refused (the client's own failover and idempotent retries may
    carry it to the new leader)."""
    spec = TopicSpec(replicas=TopicReplicas.new_computed(PARTITIONS, 2))
    async with ctx.injector.applied(fault):
        started = time.monotonic()
        async with ctx.cluster.admin(timeout=10.0) as client:
            try:
                await client.create_topic(topic, spec, wait=20.0)
                outcome = "created"
            except (ApiError, OSError, TimeoutError) as error:
                outcome = f"{type(error).__name__}: {error}"
        ctx.notes["create_outcome"] = outcome
        ctx.notes["create_seconds"] = round(time.monotonic() - started, 3)
        await ctx.new_leader(epoch)
        await ctx.hold()
    refused: list[object] = [] if outcome == "created" else [outcome]
    ctx.expect("create_refused", "the create sent during the failover did not succeed",
               len(refused), refused)  # fmt: skip
    await check_created_once(ctx, topic, PARTITIONS)


SCENARIOS = [
    Scenario(
        "topic-during-failover",
        "a topic created while the SC leader is SIGKILLed: created exactly once",
        topic_during_failover,
    ),
    Scenario(
        "create-during-failover",
        "a topic (replication 2) created right after the SC leader's SIGSTOP: created once, "
        "provisioned, not refused",
        create_during_sigstop,
        quick=False,
        min_fault=6.0,
    ),
    Scenario(
        "create-during-isolation",
        "a topic (replication 2) created right after the SC leader is cut from the KV and the "
        "SPUs: created once, provisioned, not refused",
        create_during_isolation,
        quick=False,
        min_fault=6.0,
    ),
]
