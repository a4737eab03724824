"""Soak: random faults, one at a time, for the whole fault phase; then the usual
recovery, drain and check. Seeded, so a failing schedule can be run again."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from chaos.cluster.links import kv_link
from chaos.faults.base import Fault
from chaos.faults.network import Blackhole, Latency, Loss, Reset
from chaos.faults.partition import isolated
from chaos.faults.process import Kill, Pause, Terminate
from chaos.scenarios.scenario import FaultContext, Scenario

HOLD = (1.5, 5.0)
"""Seconds each fault lasts (uniform)."""
REST = (0.5, 2.0)
"""Seconds between a heal (and an agreed leader) and the next fault."""
RECOVERY_WAIT = 30.0

Pick = Callable[[FaultContext, str, random.Random], Fault]


def _leader_kill(ctx: FaultContext, leader: str, _: random.Random) -> Fault:
    return Kill(ctx.cluster.replicas[leader])


def _leader_term(ctx: FaultContext, leader: str, _: random.Random) -> Fault:
    return Terminate(ctx.cluster.replicas[leader])


def _leader_pause(ctx: FaultContext, leader: str, _: random.Random) -> Fault:
    return Pause(ctx.cluster.replicas[leader])


def _standby_kill(ctx: FaultContext, leader: str, rng: random.Random) -> Fault:
    standbys = sorted(r for r in ctx.cluster.replicas if r != leader)
    return Kill(ctx.cluster.replicas[rng.choice(standbys)])


def _spu_kill(ctx: FaultContext, _: str, rng: random.Random) -> Fault:
    return Kill(ctx.cluster.spus[rng.choice(sorted(ctx.cluster.spus))])


def _leader_cut(ctx: FaultContext, leader: str, _: random.Random) -> Fault:
    links = ctx.cluster.links
    kv = [links[kv_link(leader)]] if kv_link(leader) in links else links.raft_of(leader)
    return Blackhole(kv + links.sc_links_to(leader), label=f"{leader} from KV and SPUs")


def _kv_latency(ctx: FaultContext, _: str, rng: random.Random) -> Fault:
    links = ctx.cluster.links
    return Latency(links.matching("kv:") or links.matching("raft:"), rng.uniform(0.02, 0.3), 0.02,
                   label="KV links")  # fmt: skip


def _kv_loss(ctx: FaultContext, _: str, rng: random.Random) -> Fault:
    links = ctx.cluster.links
    return Loss(links.matching("kv:") or links.matching("raft:"), rng.uniform(0.02, 0.2),
                label="KV links")  # fmt: skip


def _sc_links_reset(ctx: FaultContext, _: str, __: random.Random) -> Fault:
    return Reset(ctx.cluster.links.matching("sc:"), label="SPU->SC links")


def _raft_minority(ctx: FaultContext, leader: str, _: random.Random) -> Fault:
    return isolated(ctx.cluster.links, leader, ctx.cluster.replicas)


def _etcd_kill(ctx: FaultContext, _: str, __: random.Random) -> Fault:
    assert ctx.cluster.etcd is not None
    return Kill(ctx.cluster.etcd)


COMMON: list[Pick] = [
    _leader_kill, _leader_term, _leader_pause, _standby_kill, _spu_kill, _leader_cut,
    _kv_latency, _kv_loss, _sc_links_reset,
]  # fmt: skip
BY_BACKEND: dict[str, list[Pick]] = {"raft": [_raft_minority], "etcd": [_etcd_kill]}


async def soak(ctx: FaultContext, *, seed: int | None = None) -> None:
    rng = random.Random(seed)
    menu = COMMON + BY_BACKEND[ctx.cluster.shape.backend]
    schedule: list[str] = []
    ctx.notes["seed"] = seed
    ctx.notes["schedule"] = schedule
    while ctx.remaining > HOLD[0]:
        leader, _ = await ctx.leader(timeout=RECOVERY_WAIT)
        fault = rng.choice(menu)(ctx, leader, rng)
        hold = min(rng.uniform(*HOLD), ctx.remaining)
        schedule.append(f"{fault.name} {fault.target} {hold:.1f}s")
        async with ctx.injector.applied(fault):
            await asyncio.sleep(hold)
        if ctx.cluster.etcd is not None:
            await ctx.cluster.wait_etcd_healthy()
        await ctx.leader(timeout=RECOVERY_WAIT)
        await asyncio.sleep(min(rng.uniform(*REST), ctx.remaining))


def soak_scenario(seed: int | None = None) -> Scenario:
    async def step(ctx: FaultContext) -> None:
        await soak(ctx, seed=seed)

    return Scenario(
        "soak",
        "random faults one after another (leaders and standbys killed, stopped, cut off; "
        "KV links slowed, lossy; SPUs killed; partitions or etcd kills), then a check",
        step,
        duration=120.0,
        quick=False,
    )
