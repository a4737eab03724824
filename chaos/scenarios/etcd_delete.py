"""A topic with partitions deleted by hand with ``etcdctl del`` (etcd backend only): the
leader collects its partitions as orphans within a bound, and a topic created again
with the same name starts empty (it adopts none of the old partitions)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time

from chaos.faults.base import Unavailable
from chaos.scenarios.operator_cli import VerbRun, ha_sc
from chaos.scenarios.scenario import FaultContext, Scenario
from ha_sc.client import TopicReplicas, TopicSpec

TOPIC = "chaos-etcd-deleted"
PARTITIONS = 2
RECORDS = 20
COLLECT_BOUND = 10.0
ETCD_ROOT = "/ha-sc/"
ETCDCTL = "etcdctl"


def _etcdctl_present() -> None:
    if shutil.which(ETCDCTL) is None:
        raise Unavailable("etcdctl not found")


async def etcdctl_del(endpoint: str, key: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        ETCDCTL, "--endpoints", f"http://{endpoint}", "del", key,
        env={**os.environ, "ETCDCTL_API": "3"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 10.0)
    return out.decode().strip()


def _old_records(consumed: VerbRun) -> int:
    return sum(1 for line in consumed.output.splitlines() if line.startswith("old-"))


async def etcdctl_delete_topic(ctx: FaultContext) -> None:
    wrong: list[object] = []
    spec = TopicSpec(replicas=TopicReplicas.new_computed(PARTITIONS, 1))
    async with ctx.cluster.admin(timeout=5.0) as client:
        await client.create_topic(TOPIC, spec, wait=20.0)
    lines = "".join(f"old-{i}\n" for i in range(RECORDS)).encode()
    produced = await ha_sc(ctx, "produce", TOPIC, stdin=lines)
    if produced.code != 0:
        wrong.append(f"produce before the delete: {produced.output.strip()[-300:]}")
    before = _old_records(await ha_sc(ctx, "consume", TOPIC, "-B", "-d"))
    ctx.notes["records_read_before_delete"] = before
    if before != RECORDS:
        wrong.append(f"{before} of {RECORDS} records read back before the delete")
    deleted = await etcdctl_del(ctx.cluster.etcd_client_address, f"{ETCD_ROOT}topics/{TOPIC}")
    ctx.notes["etcdctl_del"] = deleted
    started = time.monotonic()
    left: list[str] = []
    async with ctx.cluster.admin(timeout=5.0) as client:
        while time.monotonic() - started < COLLECT_BOUND:
            left = [p.key for p in await client.list_partitions(TOPIC)]
            if not left:
                break
            await asyncio.sleep(0.2)
        ctx.notes["collected_seconds"] = None if left else round(time.monotonic() - started, 3)
        if left:
            wrong.append(f"partitions still listed {COLLECT_BOUND:g} s after etcdctl del: {left}")
        await client.create_topic(TOPIC, spec, wait=20.0)
    consumed = await ha_sc(ctx, "consume", TOPIC, "-B", "-d")
    old = _old_records(consumed)
    ctx.notes["records_read_after_recreate"] = old
    if consumed.code != 0:
        wrong.append(f"consume after the re-create: {consumed.output.strip()[-300:]}")
    if old:
        wrong.append(f"the re-created topic reads {old} records of the deleted one")
    ctx.expect(
        "orphans_not_collected",
        f"partitions of a topic deleted with etcdctl not gone within {COLLECT_BOUND:g} s, "
        "or a topic created again with its name not empty",
        len(wrong),
        wrong,
    )
    await ctx.hold()


SCENARIOS = [
    Scenario(
        "etcdctl-delete-topic",
        "a topic with records deleted with etcdctl del: partitions collected, a re-create "
        "of the name starts empty",
        etcdctl_delete_topic,
        backends=("etcd",),
        quick=False,
        requires=(_etcdctl_present,),
    )
]
