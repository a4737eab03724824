"""The writer's side of a Raft KV client session: its id, its sequence numbers, its floor.

One ``ClientSession`` per run of a RaftKv node (a new id after a restart, or when the
state machine has forgotten the session). Every write takes the next sequence number
and keeps it, with the same tag, over every time it is sent; the floor a write carries
is the lowest sequence number still waiting for an answer, so the state machine may
drop the answers below it (see ha_sc.kv.session_table).
"""

from __future__ import annotations

import heapq
import uuid

from ha_sc.kv.session_table import CommandTag


class ClientSession:
    """Sequence numbers of one writer, and which of them still wait for an answer."""

    def __init__(self, client: str | None = None) -> None:
        self.client = client or uuid.uuid4().hex
        self._next = 1
        self._waiting: list[int] = []  # a heap; entries that ended are dropped lazily
        self._ended: set[int] = set()

    def begin(self) -> int:
        """A sequence number for a new write."""
        seq = self._next
        self._next += 1
        heapq.heappush(self._waiting, seq)
        return seq

    def end(self, seq: int) -> None:
        """The write ``seq`` was answered, or given up: it will not be sent again."""
        self._ended.add(seq)
        while self._waiting and self._waiting[0] in self._ended:
            self._ended.discard(heapq.heappop(self._waiting))

    @property
    def floor(self) -> int:
        """Every sequence number below this one has been answered or given up."""
        return self._waiting[0] if self._waiting else self._next

    def tag(self, seq: int, proposed_at: float) -> CommandTag:
        return CommandTag(self.client, seq, self.floor, proposed_at)
