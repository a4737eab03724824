"""What every election backend offers: campaign, win, lose, observe, resign."""

from __future__ import annotations

from typing import Protocol

from election.term import LeaderInfo, Term


class Candidate(Protocol):
    """A named candidate in one election.

    ``run()`` is the candidate's background task: it campaigns, renews while
    leading, and returns only after ``close()``. Leadership is reported through
    ``term``: ``wait_won()`` returns a Term whose ``lost`` event is set the
    moment leadership ends (renewal deadline passed, lease lost, resigned).
    """

    name: str
    address: str

    @property
    def term(self) -> Term | None:
        """The current term if this candidate leads and the term is still valid."""
        ...

    async def run(self) -> None: ...

    async def wait_won(self) -> Term: ...

    def leader(self) -> LeaderInfo | None:
        """The leader as last observed by this candidate (may be itself)."""
        ...

    async def resign(self) -> None:
        """Stop leading and hand the lease over at once (graceful handover)."""
        ...

    async def close(self) -> None:
        """Stop campaigning; resigns first if leading."""
        ...
