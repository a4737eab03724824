"""Term bookkeeping every backend shares: win, renew, lose, and the deadline watchdog."""

from __future__ import annotations

import asyncio
import logging
import time

from election.guard import Guard
from election.term import Term
from election.timing import ElectionTiming

log = logging.getLogger("election")


class Leadership:
    """The leadership toggle of one candidate. Only the candidate's own tasks flip it."""

    def __init__(self, election: str, name: str, timing: ElectionTiming) -> None:
        self.election = election
        self.name = name
        self.timing = timing
        self._term: Term | None = None
        self._changed = asyncio.Event()

    @property
    def term(self) -> Term | None:
        term = self._term
        return term if term is not None and term.is_valid() else None

    @property
    def held(self) -> Term | None:
        """The term not yet ended, even if its deadline passed a moment ago."""
        term = self._term
        return term if term is not None and not term.lost.is_set() else None

    def win(self, epoch: int, sent_at: float) -> Term:
        """Won under ``epoch`` by a grant or renewal that was sent at ``sent_at``."""
        self.lose("superseded by a new term")
        term = Term(Guard(self.election, epoch), valid_until=sent_at + self.timing.renew_deadline)
        self._term = term
        log.info("%s became leader of %s epoch=%d", self.name, self.election, epoch)
        self._changed.set()
        return term

    def renewed(self, sent_at: float) -> None:
        if self._term is not None:
            self._term.extend(sent_at, self.timing.renew_deadline)

    def lose(self, reason: str) -> None:
        term = self._term
        if term is None or term.lost.is_set():
            return
        term.end(reason)
        log.warning(
            "%s lost leadership of %s epoch=%d: %s", self.name, self.election, term.epoch, reason
        )
        self._changed.set()

    async def wait_won(self) -> Term:
        while True:
            term = self.term
            if term is not None:
                return term
            self._changed.clear()
            await self._changed.wait()

    async def watchdog(self) -> None:
        """End a term the moment its renewal deadline passes."""
        while True:
            term = self.held
            if term is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            remaining = term.valid_until - time.monotonic()
            if remaining <= 0:
                self.lose(
                    f"no renewal succeeded within the renew deadline "
                    f"({self.timing.renew_deadline:.2f}s)"
                )
                continue
            try:
                async with asyncio.timeout(remaining):
                    await term.lost.wait()
            except TimeoutError:
                pass
