"""Scenarios on the SC replica set and its KV store: leaders killed, stopped, cut off;
the KV slowed, made lossy, killed; the Raft group split. Checked with leadership
as every replica tells it and the SPUs' epoch-fence decisions (and, with the data
plane, with the records)."""

from __future__ import annotations

import asyncio
import time

from chaos.checkers import epochs
from chaos.cluster.links import kv_link
from chaos.faults.network import Blackhole, Latency, Loss
from chaos.faults.partition import bridge, isolated
from chaos.faults.process import Kill, Pause, Restart, Terminate
from chaos.history.history import History
from chaos.proxy import FaultProxy
from chaos.scenarios.scenario import FaultContext, Scenario

LEASE_PAST = {"raft": 0.8, "etcd": 2.0}
"""Each backend's lease TTL (s): a pause longer than this lets a standby take over."""
TOLERATED_LATENCY = {"raft": (0.04, 0.01), "etcd": (0.15, 0.03)}
"""Added one-way latency (mean, jitter) well inside each backend's renew deadline."""


async def sc_leader_sigkill(ctx: FaultContext) -> None:
    leader, epoch = await ctx.leader_member()
    async with ctx.injector.applied(Kill(leader)):
        await ctx.new_leader(epoch)
        await ctx.hold()


async def sc_leader_sigterm(ctx: FaultContext) -> None:
    leader, epoch = await ctx.leader_member()
    async with ctx.injector.applied(Terminate(leader)):
        await ctx.new_leader(epoch)
        await ctx.hold()


async def sc_leader_sigstop(ctx: FaultContext) -> None:
    """Stopped well past its lease, so a standby leads; then woken up: it must notice
    it lost, and nothing it sent after waking may be accepted."""
    leader, epoch = await ctx.leader_member()
    async with ctx.injector.applied(Pause(leader)):
        await ctx.new_leader(epoch)
        await ctx.hold()
    await asyncio.sleep(1.0)  # awake: give it time to act on its stale view


async def sc_leader_isolated(ctx: FaultContext) -> None:
    """The leader cut from the KV (etcd link, or its Raft peers) and from every SPU."""
    cluster = ctx.cluster
    name, epoch = await ctx.leader()
    kv = kv_links(ctx, name)
    spus = cluster.links.sc_links_to(name)
    async with ctx.injector.applied(Blackhole(kv + spus, label=f"{name} from KV and SPUs")):
        await ctx.new_leader(epoch)
        await ctx.hold()


async def kv_tolerated_latency(ctx: FaultContext) -> None:
    """Latency on every replica's KV links below what the lease tolerates: no failover."""
    mean, jitter = TOLERATED_LATENCY[ctx.cluster.shape.backend]
    _, epoch = await ctx.leader()
    start = time.time()
    links = _all_kv_links(ctx)
    async with ctx.injector.applied(Latency(links, mean, jitter, label=f"KV +{mean * 1000:.0f}ms")):
        await ctx.hold()
    # a term the slow link cost ends up to a lease later, and replicas report a new leader
    # once their own (slowed) watch shows it: look after both
    await asyncio.sleep(LEASE_PAST[ctx.cluster.shape.backend] + 1.0)
    _, epoch_after = await ctx.leader()
    history = History.load(ctx.recorder.path)
    found = [
        (t, r, e) for t, r, e in epochs.leadership_changes(history) if t >= start and e > epoch
    ]
    changes: list[object] = [list(c) for c in found]
    if epoch_after > epoch and all(e != epoch_after for _, _, e in found):
        changes.append(["after the fault", "leader now", epoch_after])
    ctx.expect(
        "spurious_failovers",
        "leadership changes while the KV was slow but within the lease's tolerance",
        len(changes),
        changes,
    )


async def kv_lossy(ctx: FaultContext) -> None:
    """5 % of transmissions lost on every KV link (retransmitted late, as TCP does)."""
    async with ctx.injector.applied(Loss(_all_kv_links(ctx), 0.05, label="KV links 5% loss")):
        await ctx.hold()


async def etcd_sigkill(ctx: FaultContext) -> None:
    """etcd killed and restarted on its data: no leader can renew meanwhile."""
    etcd = ctx.cluster.etcd
    assert etcd is not None
    _, epoch = await ctx.leader()
    ctx.notes["epoch_before"] = epoch
    async with ctx.injector.applied(Kill(etcd)):
        await ctx.hold()
    await ctx.cluster.wait_etcd_healthy()


async def raft_leader_minority(ctx: FaultContext) -> None:
    """The SC leader's Raft node cut from both others: the majority elects anew."""
    name, epoch = await ctx.leader()
    partition = isolated(ctx.cluster.links, name, ctx.cluster.replicas)
    async with ctx.injector.applied(partition):
        await ctx.new_leader(epoch)
        await ctx.hold()


async def raft_bridge(ctx: FaultContext) -> None:
    """The SC leader and one standby cut from each other; the third replica still
    talks to both (a bridge)."""
    name, _ = await ctx.leader()
    standbys = sorted(r for r in ctx.cluster.replicas if r != name)
    async with ctx.injector.applied(bridge(ctx.cluster.links, [name], [standbys[0]], standbys[1])):
        await ctx.hold()


async def sc_leaders_killed_in_row(ctx: FaultContext) -> None:
    """Three SC leaders SIGKILLed one after the other, each once its successor leads;
    each comes back before the next kill."""
    gap = max(1.0, ctx.budget / 3 - 1.5)
    for _ in range(3):
        leader, epoch = await ctx.leader_member()
        async with ctx.injector.applied(Kill(leader)):
            await ctx.new_leader(epoch)
            await asyncio.sleep(gap)


async def rolling_restart(ctx: FaultContext) -> None:
    """Every SC replica stopped (SIGTERM) and started again, standbys first, the leader
    last, each back as a standby before the next."""
    name, _ = await ctx.leader()
    order = [r for r in sorted(ctx.cluster.replicas) if r != name] + [name]
    for replica in order:
        await ctx.injector.inject(fault := Restart(ctx.cluster.replicas[replica]))
        await ctx.injector.heal(fault)
        await ctx.leader(timeout=20.0)  # every running replica agrees again
        await asyncio.sleep(0.5)


def kv_links(ctx: FaultContext, replica: str) -> list[FaultProxy]:
    links = ctx.cluster.links
    if ctx.cluster.shape.backend == "etcd":
        return [links[kv_link(replica)]]
    return links.raft_of(replica)


def _all_kv_links(ctx: FaultContext) -> list[FaultProxy]:
    links = ctx.cluster.links
    return links.matching("kv:") if ctx.cluster.shape.backend == "etcd" else links.matching("raft:")


SCENARIOS = [
    Scenario(
        "sc-leader-sigkill", "SC leader SIGKILLed, restarted after the fault", sc_leader_sigkill
    ),
    Scenario("sc-leader-sigterm", "SC leader stopped with SIGTERM (hands over)", sc_leader_sigterm),
    Scenario(
        "sc-leader-sigstop",
        "SC leader SIGSTOPped past its lease, then SIGCONT",
        sc_leader_sigstop,
        min_fault=4.0,
    ),
    Scenario(
        "sc-leader-isolated",
        "SC leader blackholed from the KV and from the SPUs",
        sc_leader_isolated,
        min_fault=5.0,
    ),
    Scenario(
        "kv-latency",
        "latency on the SC<->KV links within the lease's tolerance: no failover allowed",
        kv_tolerated_latency,
    ),
    Scenario("kv-lossy", "5% loss on every SC<->KV link", kv_lossy, quick=False),
    Scenario(
        "etcd-sigkill",
        "etcd SIGKILLed, restarted after the fault",
        etcd_sigkill,
        backends=("etcd",),
        min_fault=3.0,
    ),
    Scenario(
        "raft-leader-minority",
        "SC leader's Raft node partitioned from the majority",
        raft_leader_minority,
        backends=("raft",),
        min_fault=5.0,
    ),
    Scenario(
        "raft-bridge",
        "Raft bridge: leader and a standby cut apart, the third replica talks to both",
        raft_bridge,
        backends=("raft",),
        quick=False,
    ),
    Scenario(
        "sc-leaders-killed-in-row",
        "three SC leaders SIGKILLed in a row, a few seconds apart",
        sc_leaders_killed_in_row,
        duration=20.0,
        min_fault=9.0,
        quick=False,
    ),
    Scenario(
        "rolling-restart",
        "every SC replica restarted in turn (SIGTERM, start), the leader last",
        rolling_restart,
        duration=20.0,
        quick=False,
    ),
]
