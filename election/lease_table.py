"""The replicated lease table: who holds each election, under which epoch.

Pure state, no clocks: expiry is decided outside (by the Raft leader on its
monotonic clock) and recorded here as an ``expire`` command, so every replica
applying the same commands reaches the same table. Epochs only grow, also
across release and expiry, and survive restarts with the state that holds them.
"""

from __future__ import annotations

from dataclasses import dataclass

from election.guard import Guard


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    election: str
    candidate: str
    address: str
    epoch: int
    incarnation: str = ""
    """Which run of the candidate's process holds it: a restarted candidate must not
    resume a lease its previous run held, since it cannot know what that run did."""


@dataclass(frozen=True, slots=True)
class Enlisted:
    """A candidate that takes part in an election, and where its Raft node listens."""

    candidate: str
    address: str
    raft_address: str
    incarnation: str = ""


class LeaseTable:
    """Grants, renewals, releases and expiries of election leases."""

    def __init__(self) -> None:
        self._epochs: dict[str, int] = {}
        self._holders: dict[str, LeaseHolder] = {}
        self._enlisted: dict[str, dict[str, Enlisted]] = {}
        self._renewals: dict[str, int] = {}

    def enlist(self, election: str, candidate: Enlisted) -> None:
        """Record a candidate, so a resigning holder can name it as successor.

        Candidates stay in the order they (last) enlisted: longest-running first.
        """
        enlisted = self._enlisted.setdefault(election, {})
        enlisted.pop(candidate.candidate, None)
        enlisted[candidate.candidate] = candidate

    def enlisted(self, election: str) -> tuple[Enlisted, ...]:
        return tuple(self._enlisted.get(election, {}).values())

    def holder(self, election: str) -> LeaseHolder | None:
        return self._holders.get(election)

    def last_epoch(self, election: str) -> int:
        return self._epochs.get(election, 0)

    def renewals(self, election: str) -> int:
        """Renewals applied under the current holder's epoch."""
        return self._renewal_counts().get(election, 0)

    def renew(self, election: str, epoch: int) -> bool:
        """The holder at ``epoch`` renews; False if that epoch no longer holds."""
        if not self.is_current(Guard(election, epoch)):
            return False
        counts = self._renewal_counts()
        counts[election] = counts.get(election, 0) + 1
        return True

    def acquire(
        self, election: str, candidate: str, address: str = "", incarnation: str = ""
    ) -> LeaseHolder | None:
        """Grant the lease to ``candidate`` if nobody holds it; None otherwise."""
        if election in self._holders:
            return None
        return self._grant(election, candidate, address, incarnation)

    def transfer(
        self, election: str, epoch: int, successor: str, address: str, incarnation: str = ""
    ) -> LeaseHolder | None:
        """The holder at ``epoch`` hands the lease to ``successor`` under a new epoch."""
        if not self.is_current(Guard(election, epoch)):
            return None
        return self._grant(election, successor, address, incarnation)

    def release(self, election: str, epoch: int) -> bool:
        """The holder at ``epoch`` gives the lease up."""
        if not self.is_current(Guard(election, epoch)):
            return False
        del self._holders[election]
        return True

    def expire(self, election: str, epoch: int, renewals: int | None = None) -> bool:
        """The lease at ``epoch`` ran out (decided by the caller's clock, after the
        ``renewals``-th renewal). Refused if a renewal was applied since the one the
        caller counted from: the holder extends its term on every renewal that
        commits, also on one ordered just before this expiry."""
        if renewals is not None and renewals != self.renewals(election):
            return False
        return self.release(election, epoch)

    def take_over(
        self,
        election: str,
        epoch: int,
        renewals: int,
        candidate: str,
        address: str,
        incarnation: str = "",
    ) -> LeaseHolder | None:
        """Expire the lease at ``epoch`` (as ``expire``) and grant it to ``candidate``
        under a new epoch, in one step; None if the expiry is refused."""
        if not self.expire(election, epoch, renewals):
            return None
        return self._grant(election, candidate, address, incarnation)

    def is_current(self, guard: Guard) -> bool:
        holder = self._holders.get(guard.election)
        return holder is not None and holder.epoch == guard.epoch

    def _grant(self, election: str, candidate: str, address: str, incarnation: str) -> LeaseHolder:
        epoch = self._epochs.get(election, 0) + 1
        self._epochs[election] = epoch
        self._renewal_counts()[election] = 0
        holder = LeaseHolder(election, candidate, address, epoch, incarnation)
        self._holders[election] = holder
        return holder

    def _renewal_counts(self) -> dict[str, int]:
        """A table from a snapshot taken before renewals were counted has none."""
        counts: dict[str, int] = self.__dict__.setdefault("_renewals", {})
        return counts
