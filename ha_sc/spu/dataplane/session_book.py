"""A follower's side of one fetch session with a leader SPU: what the leader was told
and what the next fetch must tell it (pure; ``follower_session.py`` does the I/O).

- A partition **added** (the follower starts following it from this leader) is told in
  full (key, offset, generation) by the next fetch, which is sent at once.
- An offset that **moved** (records appended, or the log cut) is told by the next
  fetch; one that did not is not repeated: the leader's session remembers it.
- A partition **removed** is forgotten by the next fetch.
- A partition the leader answered with an error was dropped from the leader's session:
  it is **held** for a back-off (0.05 s doubling to 1 s) and then told in full again.
- After a **reset** (a new connection, or the leader lost the session) every partition
  not held is told in full again.

Answers match a partition only from the fetch that told it in full on: an answer to an
earlier fetch (before a removal and a new add of the same key, or before an error) is
not about this member and is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ha_sc.protocol.fetch_session import PartitionFetch, SessionChanges

RETRY_INITIAL = 0.05
RETRY_MAX = 1.0


@dataclass(slots=True)
class Member:
    """One partition followed in the session."""

    key: str
    generation: int | None
    told: int | None = None
    """The fetch offset the leader's session holds for it (None: not told)."""
    since: int | None = None
    """The fetch that told it in full; answers to earlier fetches are not its."""
    backoff: float = RETRY_INITIAL
    """How long it is held after the next error."""


class SessionBook:
    """The partitions of one session and what the leader knows of them."""

    def __init__(self) -> None:
        self.session = 0
        """The leader's id for the session; 0 until it answers (or after a reset)."""
        self.fetches = 0
        """Fetches built so far; each fetch's number is this count after it was built."""
        self.members: dict[str, Member] = {}
        self._unsent: set[str] = set()
        self._moved: set[str] = set()
        self._forget: set[str] = set()
        self._held: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self.members)

    @property
    def idle(self) -> bool:
        """Nothing followed and nothing left to forget: no fetch is worth sending."""
        return not self.members and not self._forget

    @property
    def urgent(self) -> bool:
        """Partitions wait to be told in full: worth a fetch now, not after the one
        parked at the leader."""
        return bool(self._unsent)

    def add(self, key: str, generation: int | None) -> None:
        self.members[key] = Member(key, generation)
        self._forget.discard(key)  # told in full instead: the leader replaces what it held
        self._held.pop(key, None)
        self._moved.discard(key)
        self._unsent.add(key)

    def remove(self, key: str) -> None:
        member = self.members.pop(key, None)
        self._unsent.discard(key)
        self._moved.discard(key)
        self._held.pop(key, None)
        if member is not None and member.told is not None:
            self._forget.add(key)

    def moved(self, key: str) -> None:
        """``key``'s offset (its LEO) changed."""
        if key in self.members:
            self._moved.add(key)

    def accepts(self, key: str, fetch: int) -> Member | None:
        """The member an answer to fetch number ``fetch`` about ``key`` is for, if any."""
        member = self.members.get(key)
        if member is None or member.since is None or member.since > fetch:
            return None
        return member

    def answered(self, member: Member) -> None:
        """The leader answered for ``member`` without an error."""
        member.backoff = RETRY_INITIAL

    def hold(self, member: Member, now: float, *, at_once: bool = False) -> None:
        """The leader answered ``member`` with an error and dropped it from its session:
        tell it again after its back-off (``at_once``: with the next fetch)."""
        member.told = member.since = None
        self._moved.discard(member.key)
        if at_once:
            self._unsent.add(member.key)
            return
        self._held[member.key] = now + member.backoff
        member.backoff = min(member.backoff * 2, RETRY_MAX)

    def release_due(self, now: float) -> bool:
        """Held partitions whose back-off passed are to be told again; True if any."""
        due = [key for key, at in self._held.items() if at <= now]
        for key in due:
            del self._held[key]
            self._unsent.add(key)
        return bool(due)

    def next_release(self) -> float | None:
        """When the next held partition is due, if one is held."""
        return min(self._held.values(), default=None)

    def reset(self) -> None:
        """The leader's session is gone: the next fetch opens a new one, in full."""
        self.session = 0
        self._forget.clear()
        self._moved.clear()
        for key, member in self.members.items():
            member.told = member.since = None
            if key not in self._held:
                self._unsent.add(key)

    def next_fetch(self, leo: Callable[[str], int]) -> tuple[int, SessionChanges]:
        """The number and the changes of the next fetch (``leo``: a partition's fetch
        offset now); from then on the leader is taken to know them."""
        self.fetches += 1
        number = self.fetches
        fetch: list[PartitionFetch] = []
        for key in self._unsent:
            member = self.members[key]
            member.told, member.since = leo(key), number
            fetch.append((key, member.told, member.generation))
        for key in self._moved - self._unsent:
            member = self.members[key]
            offset = leo(key)
            if member.told is not None and offset != member.told:
                member.told = offset
                fetch.append((key, offset, member.generation))
        changes = SessionChanges(fetch=fetch, forget=sorted(self._forget))
        self._unsent.clear()
        self._moved.clear()
        self._forget.clear()
        return number, changes
