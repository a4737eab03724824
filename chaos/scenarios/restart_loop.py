"""The SC leader SIGKILLed and started again on its recorded ports, cycle after cycle,
under the normal workload: every restart binds (answers on its public port) and rejoins
as a follower of the current leader within a bound; the workload's invariants hold."""

from __future__ import annotations

import statistics
import time

from chaos.faults.process import Kill
from chaos.scenarios.scenario import FaultContext, Scenario

CYCLES = 30
REJOIN_BOUND = 15.0
"""Seconds a restarted replica may take to answer and to name the current leader."""
POLL = 0.05


async def _rejoined(ctx: FaultContext, name: str, leader: str) -> tuple[float | None, float | None]:
    """Seconds until ``name`` answers on its public port, and until it reports itself
    a follower of ``leader`` (None: not within ``REJOIN_BOUND``)."""
    started = time.monotonic()
    bound: float | None = None
    while (elapsed := time.monotonic() - started) < REJOIN_BOUND:
        report = (await ctx.cluster.reports()).get(name)
        if report is not None:
            bound = elapsed if bound is None else bound
            named = (report.get("leader") or {}).get("replica_id")
            if report.get("role") != "leader" and named == leader:
                return bound, time.monotonic() - started
        await ctx.hold(POLL)
    return bound, None


async def restart_loop(ctx: FaultContext) -> None:
    binds: list[float] = []
    rejoins: list[float] = []
    failed: list[object] = []
    cycles = 0
    while cycles < CYCLES and (cycles == 0 or ctx.remaining > 0):
        member, epoch = await ctx.leader_member()
        await ctx.injector.inject(fault := Kill(member))
        new, _ = await ctx.new_leader(epoch)
        await ctx.injector.heal(fault)  # started again: same command line, same ports
        bound, rejoined = await _rejoined(ctx, member.name, new)
        cycles += 1
        if bound is None or rejoined is None:
            failed.append(
                f"cycle {cycles}: {member.name} "
                + ("never answered" if bound is None else "answered but did not follow")
                + f" {new} within {REJOIN_BOUND:g} s"
            )
            break
        binds.append(bound)
        rejoins.append(rejoined)
        await ctx.cluster.wait_for_leader(timeout=REJOIN_BOUND)
    ctx.notes["cycles"] = cycles
    if rejoins:
        ctx.notes["bind_seconds"] = {"median": round(statistics.median(binds), 3),
                                     "worst": round(max(binds), 3)}  # fmt: skip
        ctx.notes["rejoin_seconds"] = {"median": round(statistics.median(rejoins), 3),
                                       "worst": round(max(rejoins), 3)}  # fmt: skip
    ctx.expect(
        "restart_not_rejoined",
        f"a restarted leader did not answer on its port and follow the new leader within "
        f"{REJOIN_BOUND:g} s",
        len(failed),
        failed,
    )


SCENARIOS = [
    Scenario(
        "restart-loop",
        f"{CYCLES} cycles (or --duration) of SC leader SIGKILL and restart on its ports: "
        "each restart binds and rejoins as a follower",
        restart_loop,
        quick=False,
        duration=360.0,
    )
]
