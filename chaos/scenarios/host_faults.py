"""Scenarios that need the host's tools (iptables, libfaketime); skipped with the reason
printed where the tool is missing (checked before any cluster starts)."""

from __future__ import annotations

from chaos.faults.host import ClockSkew, PortDrop, iptables, libfaketime
from chaos.faults.process import Kill
from chaos.scenarios.scenario import FaultContext, Scenario

SKEW = 60.0
"""Seconds the skewed replica's wall clock is ahead."""


async def etcd_port_drop(ctx: FaultContext) -> None:
    """Every packet to etcd's client port dropped by the kernel: no replica can renew."""
    etcd = ctx.cluster.etcd_client_address
    port = int(etcd.rsplit(":", 1)[1])
    async with ctx.injector.applied(PortDrop(port, label=f"etcd {etcd}")):
        await ctx.hold()
    await ctx.cluster.wait_etcd_healthy()


async def skewed_standby_takes_over(ctx: FaultContext) -> None:
    """A standby restarted with its wall clock a minute ahead, then the leader killed:
    leases run on the monotonic clock, so the skew must change nothing."""
    leader, epoch = await ctx.leader_member()
    standby = next(m for n, m in sorted(ctx.cluster.replicas.items()) if m is not leader)
    async with ctx.injector.applied(ClockSkew(standby, SKEW)):
        await ctx.leader(timeout=20.0)
        async with ctx.injector.applied(Kill(leader)):
            await ctx.new_leader(epoch)
            await ctx.hold()


SCENARIOS = [
    Scenario(
        "etcd-iptables-drop",
        "every packet to etcd's client port dropped by iptables, then let through",
        etcd_port_drop,
        backends=("etcd",),
        quick=False,
        min_fault=4.0,
        requires=(iptables,),
    ),
    Scenario(
        "clock-skew-standby",
        f"a standby's wall clock {SKEW:.0f} s ahead (libfaketime), then the leader SIGKILLed",
        skewed_standby_takes_over,
        quick=False,
        min_fault=6.0,
        requires=(libfaketime,),
    ),
]
