"""What a scenario is: a named fault step run between a baseline and a recovery.

Every scenario runs the same phases (``chaos.runner``): baseline (steady load),
fault (the scenario's ``fault`` coroutine: it injects faults through the context's
injector and returns when its fault phase is over), recovery (every fault healed,
the cluster back to an agreed leader and Online SPUs), drain (producers stop, the
final read), check (every checker over the history).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from chaos.checkers.verdict import Invariant
from chaos.cluster.member import Member
from chaos.cluster.topology import ChaosCluster
from chaos.faults.base import Injector
from chaos.history.recorder import Recorder

BACKENDS = ("raft", "etcd")

# How a run of ``duration`` seconds is split between the timed phases.
BASELINE_SHARE = 0.25
FAULT_SHARE = 0.45


@dataclass
class FaultContext:
    """What a scenario's fault step works with."""

    cluster: ChaosCluster
    injector: Injector
    recorder: Recorder
    budget: float
    """Seconds the fault phase should last (from ``--duration``)."""
    expectations: list[Invariant] = field(default_factory=list)
    """The scenario's own invariants (a topic created once, no spurious failover)."""
    notes: dict[str, object] = field(default_factory=dict)
    """Facts the scenario reports (which replica it killed, and when)."""
    started: float = field(default_factory=time.monotonic)

    @property
    def remaining(self) -> float:
        return max(0.0, self.budget - (time.monotonic() - self.started))

    async def leader(self, *, above: int = 0, timeout: float = 30.0) -> tuple[str, int]:
        """The SC leader every answering replica names (waits for one)."""
        return await self.cluster.wait_for_leader(above=above, timeout=timeout)

    async def new_leader(self, above: int, *, timeout: float = 15.0) -> tuple[str, int]:
        """A leader above epoch ``above`` that a majority names (the replica the fault
        hit may still be behind)."""
        timeout = max(self.remaining, timeout)
        return await self.cluster.wait_for_leader(above=above, everyone=False, timeout=timeout)

    async def leader_member(self) -> tuple[Member, int]:
        name, epoch = await self.leader()
        return self.cluster.replicas[name], epoch

    async def hold(self, seconds: float | None = None) -> None:
        """Wait ``seconds`` (default: what is left of the budget)."""
        await asyncio.sleep(self.remaining if seconds is None else max(0.0, seconds))

    def expect(
        self, name: str, meaning: str, count: int, examples: list[object] | None = None
    ) -> None:
        """A scenario invariant: ``count`` must be 0."""
        self.expectations.append(
            Invariant(
                name=name, meaning=meaning, checked=True, count=count, examples=examples or []
            )
        )


FaultStep = Callable[[FaultContext], Awaitable[None]]
Requirement = Callable[[], object]
"""Raises ``Unavailable`` (with the reason) where the host lacks what a scenario needs."""


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    fault: FaultStep
    backends: tuple[str, ...] = BACKENDS
    data_plane: bool = False
    """Meaningful only with producers and consumers (skipped without the data plane)."""
    quick: bool = True
    """Part of the quick suite (pytest ``chaos`` marker)."""
    duration: float = 14.0
    """Default seconds of baseline + fault + recovery."""
    min_fault: float = 0.0
    """The fault phase lasts at least this long, whatever ``--duration`` says."""
    requires: tuple[Requirement, ...] = ()
    """Host tools the scenario needs, checked before the cluster starts."""
    overrun: float = 60.0
    """Seconds the fault step may run past its planned length before the run is ended
    as failed (a step that waits on processes of its own needs more on a loaded host)."""
