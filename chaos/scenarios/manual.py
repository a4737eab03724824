"""``manual``: no scripted fault. The fault phase is a window for a fault injected by
hand (``kill -STOP <pid>`` of any member, say); the run prints every member's PID and
every proxied link when it opens, then checks the history like any other run."""

from __future__ import annotations

import logging

from chaos.scenarios.scenario import FaultContext, Scenario

log = logging.getLogger("chaos.manual")


async def hand_window(ctx: FaultContext) -> None:
    cluster = ctx.cluster
    members = ", ".join(f"{m.name} pid {m.pid}" for m in cluster.members)
    links = ", ".join(f"{n} {cluster.links[n].address}" for n in cluster.links.names)
    log.warning(
        "fault window open for %.0f s: inject a fault by hand now. Members: %s. Links: %s",
        ctx.budget,
        members,
        links,
    )
    ctx.notes["members"] = {m.name: m.pid for m in cluster.members}
    await ctx.hold()
    log.warning("fault window closed: heal what you injected; the recovery phase starts")


SCENARIOS = [
    Scenario(
        "manual",
        "no scripted fault: the fault phase is a window for a fault injected by hand",
        hand_window,
        duration=60.0,
        quick=False,
    )
]
