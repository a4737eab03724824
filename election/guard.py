"""The fencing token a leader attaches to every write it makes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Guard:
    """Proof of leadership: a write carrying it is applied only while ``epoch``
    is still the current epoch of ``election``.

    On etcd the epoch is the create revision of the election's leader key; on
    Raft it is the counter the replicated lease table bumps on every grant.
    """

    election: str
    epoch: int

    def __str__(self) -> str:
        return f"{self.election}@{self.epoch}"
