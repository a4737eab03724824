"""The lease table as a pysyncobj consumer: every grant and release is a Raft command.

A host process puts this consumer in the same ``SyncObj`` as whatever it fences
(the SC puts its KV there), so a fenced write and the lease it is checked
against are ordered by one replicated log.

Besides the replicated table, each node keeps a local note of when (on its own
monotonic clock) the last grant or renewal of each election's current epoch
*arrived* on it: the time its Raft node received that log entry when the node
noted it (``RaftSyncObj.applying_arrival``), else the time it applied it. Only
that note decides expiry, on whichever node is the Raft leader: no wall-clock
time ever enters the log. The holder sent the entry before any node received it,
so silence counted from the arrival never starts before the holder's own count;
a new Raft leader, which applies the previous term's entries only after its
election, thus counts from when the last renewal reached it, not from when it
took over. The expiry names the renewal it counted from, and the table refuses
it if a later one was applied first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pysyncobj import SyncObjConsumer, replicated

from election.guard import Guard
from election.lease_table import Enlisted, LeaseHolder, LeaseTable
from election.wakeup import Wakeup

F = TypeVar("F", bound=Callable[..., Any])
command = cast(Callable[[F], F], replicated)
"""pysyncobj's ``replicated``, typed; it must stay the same function object,
since it finds the class body by counting stack frames."""


@dataclass(frozen=True, slots=True)
class Silence:
    """How long the holder of an election's lease has been heard of last, on this node."""

    epoch: int
    renewals: int
    """The renewals applied under ``epoch``: an expiry names it (``LeaseTable.expire``)."""
    since: float
    """When the last grant or renewal of ``epoch`` arrived on this node (monotonic)."""

    def seconds(self, now: float) -> float:
        return now - self.since


class RaftLeases(SyncObjConsumer):  # type: ignore[misc]
    """Replicated lease table. Call the commands with ``callback=`` from a host."""

    def __init__(self) -> None:
        # attributes set before the base init are local to this node, not replicated
        self.lock = threading.Lock()
        self.changed = Wakeup()
        self.seen: dict[str, tuple[int, int, float]] = {}
        """Per election: epoch, renewals and when the last of them arrived (``Silence``)."""
        self.confirmed: dict[str, int] = {}
        """Per election, the newest epoch whose holder has renewed at least once."""
        super().__init__()
        self.table = LeaseTable()

    # local reads

    def holder(self, election: str) -> LeaseHolder | None:
        with self.lock:
            return self.table.holder(election)

    def is_current(self, guard: Guard) -> bool:
        with self.lock:
            return self.table.is_current(guard)

    def enlisted(self, election: str) -> tuple[Enlisted, ...]:
        with self.lock:
            return self.table.enlisted(election)

    def silence(self, election: str) -> Silence | None:
        """Since when this node has heard nothing of the current holder (None: free).

        With no note of the current epoch (after a snapshot was installed), the
        silence counts from now."""
        with self.lock:
            holder = self.table.holder(election)
            if holder is None:
                return None
            renewals = self.table.renewals(election)
            noted = self.seen.get(election)
            if noted is None or noted[:2] != (holder.epoch, renewals):
                noted = self.seen[election] = (holder.epoch, renewals, time.monotonic())
            return Silence(*noted)

    # replicated commands

    @command
    def enlist(
        self, election: str, candidate: str, address: str, raft_address: str, incarnation: str
    ) -> None:
        with self.lock:
            self.table.enlist(election, Enlisted(candidate, address, raft_address, incarnation))
        self.changed.notify()

    @command
    def acquire(
        self, election: str, candidate: str, address: str, incarnation: str
    ) -> LeaseHolder | None:
        with self.lock:
            holder = self.table.acquire(election, candidate, address, incarnation)
            if holder is not None:
                self._note(holder)
        self.changed.notify()
        return holder

    @command
    def renew(self, election: str, epoch: int) -> bool:
        """Commits only through a majority: proof that the lease still holds."""
        with self.lock:
            current = self.table.renew(election, epoch)
            first = current and self.confirmed.get(election, 0) < epoch
            holder = self.table.holder(election)
            if holder is not None and current:
                self._note(holder)
                self.confirmed[election] = epoch
        if first:
            self.changed.notify()
        return current

    @command
    def transfer(
        self, election: str, epoch: int, successor: str, address: str, incarnation: str
    ) -> LeaseHolder | None:
        with self.lock:
            holder = self.table.transfer(election, epoch, successor, address, incarnation)
            if holder is not None:
                self._note(holder)
        self.changed.notify()
        return holder

    @command
    def release(self, election: str, epoch: int) -> bool:
        with self.lock:
            released = self.table.release(election, epoch)
        self.changed.notify()
        return released

    @command
    def expire(self, election: str, epoch: int, renewals: int | None = None) -> bool:
        with self.lock:
            expired = self.table.expire(election, epoch, renewals)
        self.changed.notify()
        return expired

    @command
    def take_over(
        self,
        election: str,
        epoch: int,
        renewals: int,
        candidate: str,
        address: str,
        incarnation: str,
    ) -> LeaseHolder | None:
        """Expire a silent lease and grant it to ``candidate`` in one command."""
        with self.lock:
            holder = self.table.take_over(
                election, epoch, renewals, candidate, address, incarnation
            )
            if holder is not None:
                self._note(holder)
        self.changed.notify()
        return holder

    # snapshots

    def _deserialize(self, data: Any) -> None:
        with self.lock:
            super()._deserialize(data)
            self.seen.clear()  # unknown: silence counts from now
        self.changed.notify()

    def _note(self, holder: LeaseHolder) -> None:
        """On the Raft thread, applying a grant or renewal of ``holder``'s epoch."""
        now = time.monotonic()
        arrival = getattr(self._syncObj, "applying_arrival", None)
        arrived = arrival() if arrival is not None else None
        at = now if arrived is None else min(arrived, now)
        renewals = self.table.renewals(holder.election)
        self.seen[holder.election] = (holder.epoch, renewals, at)
