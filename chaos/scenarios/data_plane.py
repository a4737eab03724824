"""Scenarios that hit the data plane too: the SPU leading a partition killed, killed
together with the SC leader, or cut off from the SC while clients still reach it.
Meaningful only with the workload; checked above all on the records."""

from __future__ import annotations

from chaos.cluster.member import Member
from chaos.faults.network import Blackhole
from chaos.faults.process import Kill
from chaos.scenarios.scenario import FaultContext, Scenario
from chaos.workload.streaming import TOPIC


async def partition_leader(ctx: FaultContext, partition: int = 0) -> tuple[int, Member]:
    """The SPU leading ``partition`` of the workload's topic, as the SC says."""
    async with ctx.cluster.admin(timeout=5.0) as admin:
        for p in await admin.list_partitions(TOPIC):
            if p.key == f"{TOPIC}-{partition}":
                spu = p.spec.leader
                return spu, ctx.cluster.spus[spu]
    raise LookupError(f"no partition {TOPIC}-{partition}")


async def spu_leader_sigkill(ctx: FaultContext) -> None:
    spu, member = await partition_leader(ctx)
    ctx.notes["killed_spu"] = spu
    async with ctx.injector.applied(Kill(member)):
        await ctx.hold()


async def sc_leader_and_spu_sigkill(ctx: FaultContext) -> None:
    """The SC leader and the SPU leading partition 0 SIGKILLed at once."""
    sc, epoch = await ctx.leader_member()
    spu, member = await partition_leader(ctx)
    ctx.notes["killed_spu"] = spu
    async with ctx.injector.applied(Kill(sc)), ctx.injector.applied(Kill(member)):
        await ctx.new_leader(epoch)
        await ctx.hold()


async def spu_cut_from_sc(ctx: FaultContext) -> None:
    """The SPU leading partition 0 cut from every SC replica (its control links only:
    clients and the other SPUs still reach it). The SC moves the partition's
    leadership; the old leader must not go on committing."""
    spu, _ = await partition_leader(ctx)
    ctx.notes["cut_spu"] = spu
    links = ctx.cluster.links.sc_links_of(spu)
    async with ctx.injector.applied(Blackhole(links, label=f"spu {spu} from the SC")):
        await ctx.hold()
        moved_to, _ = await partition_leader(ctx)
        ctx.notes["partition_leader_at_heal"] = moved_to


SCENARIOS = [
    Scenario(
        "spu-leader-sigkill",
        "the SPU leading a partition SIGKILLed, restarted after the fault",
        spu_leader_sigkill,
        data_plane=True,
        quick=False,
    ),
    Scenario(
        "sc-leader-and-spu-sigkill",
        "the SC leader and the partition-leader SPU SIGKILLed together",
        sc_leader_and_spu_sigkill,
        data_plane=True,
        min_fault=5.0,
    ),
    Scenario(
        "spu-cut-from-sc",
        "a partition-leader SPU cut off from the SC, still reachable by clients",
        spu_cut_from_sc,
        data_plane=True,
        min_fault=6.0,
    ),
]
