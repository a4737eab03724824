"""What an SPU does with a ``leader_notice``: move to the new leader now, or not.

A notice comes from any SC replica the SPU watches, the leader's own included, and
every replica tells of the same win, so most notices tell the SPU nothing new. It
moves only for an epoch above both the highest it has seen from a leader (the
fence, DESIGN.md) and the highest it has already moved for; a notice below the
fence is from a replica whose view is behind and is refused like a stale message.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MoveTo:
    """End the current session now and register with ``leader_private``, no backoff."""

    leader_private: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Stay:
    """Nothing new: keep the current session."""

    reason: str


@dataclass(frozen=True, slots=True)
class RefuseStale:
    """A notice of a leader older than one this SPU has heard from: fenced."""

    reason: str


FollowDecision = MoveTo | Stay | RefuseStale


def on_leader_notice(
    *,
    epoch: int,
    leader_private: str,
    highest_epoch: int,
    moved_for: int,
    session_with: str | None,
) -> FollowDecision:
    """The SPU's answer to a notice that a leader of ``epoch`` is at ``leader_private``.

    ``highest_epoch``: the fence's highest epoch; ``moved_for``: the highest epoch of
    a notice it already moved for; ``session_with``: the replica its current session
    (served or being answered) is with, if any.
    """
    if epoch < highest_epoch:
        return RefuseStale(f"epoch {epoch} is below the highest seen, {highest_epoch}")
    if epoch == highest_epoch:
        return Stay(f"epoch {epoch} is the leader already followed")
    if epoch <= moved_for:
        return Stay(f"already moved for epoch {moved_for}")
    if session_with == leader_private:
        return Stay(f"already registering with {leader_private}")
    return MoveTo(leader_private, epoch)
