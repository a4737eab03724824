"""The lease table as a pysyncobj consumer: every grant and release is a Raft command.

A host process puts this consumer in the same ``SyncObj`` as whatever it fences
(the SC puts its KV there), so a fenced write and the lease it is checked
against are ordered by one replicated log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from pysyncobj import SyncObjConsumer, replicated

from election.guard import Guard
from election.lease_table import LeaseHolder, LeaseTable

F = TypeVar("F", bound=Callable[..., Any])
command = cast(Callable[[F], F], replicated)
"""pysyncobj's ``replicated``, typed; it must stay the same function object,
since it finds the class body by counting stack frames."""


class RaftLeases(SyncObjConsumer):  # type: ignore[misc]
    """Replicated lease table. Call the commands with ``callback=`` from a host."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # set before the base init: not replicated state
        super().__init__()
        self.table = LeaseTable()

    def holder(self, election: str) -> LeaseHolder | None:
        with self.lock:
            return self.table.holder(election)

    def is_current(self, guard: Guard) -> bool:
        with self.lock:
            return self.table.is_current(guard)

    @command
    def acquire(self, election: str, candidate: str, address: str) -> LeaseHolder | None:
        with self.lock:
            return self.table.acquire(election, candidate, address)

    @command
    def renew(self, election: str, epoch: int) -> bool:
        """A no-op that commits only through a majority: proof the lease still holds."""
        with self.lock:
            return self.table.is_current(Guard(election, epoch))

    @command
    def transfer(
        self, election: str, epoch: int, successor: str, address: str
    ) -> LeaseHolder | None:
        with self.lock:
            return self.table.transfer(election, epoch, successor, address)

    @command
    def release(self, election: str, epoch: int) -> bool:
        with self.lock:
            return self.table.release(election, epoch)

    @command
    def expire(self, election: str, epoch: int) -> bool:
        with self.lock:
            return self.table.expire(election, epoch)
