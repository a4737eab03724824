"""A topic created while the SC leader dies: created exactly once, provisioned, with
exactly the partitions asked for. The client retries as a user would (a 409 on a
retry means an earlier attempt got through)."""

from __future__ import annotations

import asyncio
import time

from chaos.faults.process import Kill
from chaos.scenarios.scenario import FaultContext, Scenario
from ha_sc.client import ApiError
from ha_sc.model import TopicReplicas, TopicResolution, TopicSpec

TOPIC = "chaos-created"
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
    await ctx.leader()
    async with ctx.cluster.admin(timeout=5.0) as client:
        topics = [t for t in await client.list_topics() if t.key == TOPIC]
        partitions = sorted(p.key for p in await client.list_partitions(TOPIC))
    wrong: list[object] = []
    if len(topics) != 1:
        wrong.append(f"{len(topics)} topics named {TOPIC}")
    elif topics[0].status.resolution is not TopicResolution.PROVISIONED:
        wrong.append(f"topic {topics[0].status.resolution}")
    expected = [f"{TOPIC}-{i}" for i in range(PARTITIONS)]
    if partitions != expected:
        wrong.append(f"partitions {partitions}, expected {expected}")
    ctx.expect(
        "topic_not_created_once",
        f"the topic created during the failover is not there exactly once with {PARTITIONS} "
        "partitions, provisioned",
        len(wrong),
        wrong,
    )


SCENARIOS = [
    Scenario(
        "topic-during-failover",
        "a topic created while the SC leader is SIGKILLed: created exactly once",
        topic_during_failover,
    )
]
