"""A one-process election: the only candidate wins at once. For single-replica runs and tests."""

from __future__ import annotations

import asyncio
import logging

from election.leadership import Leadership
from election.lease_table import LeaseTable
from election.term import LeaderInfo, Term
from election.timing import ElectionTiming

log = logging.getLogger("election.memory")

FOREVER = float("inf")


class MemoryCandidate:
    """Holds ``table``'s lease for ``election`` while it runs; nobody else competes."""

    def __init__(self, table: LeaseTable, *, election: str, name: str, address: str) -> None:
        self.table = table
        self.election = election
        self.name = name
        self.address = address
        self.leadership = Leadership(election, name, ElectionTiming())
        self._closing = asyncio.Event()

    @property
    def term(self) -> Term | None:
        return self.leadership.term

    async def wait_won(self) -> Term:
        return await self.leadership.wait_won()

    def leader(self) -> LeaderInfo | None:
        holder = self.table.holder(self.election)
        return (
            None if holder is None else LeaderInfo(holder.candidate, holder.address, holder.epoch)
        )

    async def run(self) -> None:
        holder = self.table.acquire(self.election, self.name, self.address)
        if holder is not None:
            self.leadership.win(holder.epoch, FOREVER)
        await self._closing.wait()

    async def resign(self) -> None:
        term = self.leadership.held
        if term is not None:
            self.leadership.lose("resigned")
            self.table.release(self.election, term.epoch)

    async def close(self) -> None:
        await self.resign()
        self._closing.set()
