"""The lease table as a pysyncobj consumer: every grant and release is a Raft command.

A host process puts this consumer in the same ``SyncObj`` as whatever it fences
(the SC puts its KV there), so a fenced write and the lease it is checked
against are ordered by one replicated log.

Besides the replicated table, each node keeps a local note of when (on its own
monotonic clock) it applied the last grant or renewal of each election's
current epoch. Only that note decides expiry, on whichever node is the Raft
leader: no wall-clock time ever enters the log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from pysyncobj import SyncObjConsumer, replicated

from election.guard import Guard
from election.lease_table import Enlisted, LeaseHolder, LeaseTable
from election.wakeup import Wakeup

F = TypeVar("F", bound=Callable[..., Any])
command = cast(Callable[[F], F], replicated)
"""pysyncobj's ``replicated``, typed; it must stay the same function object,
since it finds the class body by counting stack frames."""


class RaftLeases(SyncObjConsumer):  # type: ignore[misc]
    """Replicated lease table. Call the commands with ``callback=`` from a host."""

    def __init__(self) -> None:
        # attributes set before the base init are local to this node, not replicated
        self.lock = threading.Lock()
        self.changed = Wakeup()
        self.seen: dict[str, tuple[int, float]] = {}
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

    def silent_for(self, election: str, epoch: int) -> float:
        """Seconds since this node applied the last grant or renewal of ``epoch``."""
        with self.lock:
            seen_epoch, at = self.seen.get(election, (epoch, time.monotonic()))
            if seen_epoch != epoch:
                self.seen[election] = (epoch, time.monotonic())
                return 0.0
            return time.monotonic() - at

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
            holder = self.table.holder(election)
            current = holder is not None and holder.epoch == epoch
            first = current and self.confirmed.get(election, 0) < epoch
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
    def expire(self, election: str, epoch: int) -> bool:
        with self.lock:
            expired = self.table.expire(election, epoch)
        self.changed.notify()
        return expired

    # snapshots

    def _deserialize(self, data: Any) -> None:
        with self.lock:
            super()._deserialize(data)
            self.seen.clear()  # unknown: silent_for counts from now
        self.changed.notify()

    def _note(self, holder: LeaseHolder) -> None:
        self.seen[holder.election] = (holder.epoch, time.monotonic())
