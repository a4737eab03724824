"""Client sessions of the Raft KV: every write applied once, however often it is sent.

The client-session design of the Raft dissertation (Ongaro, section 6.3). Each
write carries a ``CommandTag``: the writer's client id, the write's sequence
number, the writer's *floor* (every sequence number below it has been answered
or given up by the writer) and the time the writer proposed it. The state
machine keeps, per client, the answer of every write at or above the floor; a
write sent again (after LEADER_CHANGED, a timeout, a reconnect) is answered with
its first answer and not applied again, and a late copy of a write below the
floor is not applied at all.

Everything here is decided by the log alone, so every replica keeps the same
table: "now" is the newest proposal time the log has carried (never a replica's
own clock), a session expires when its client has proposed nothing for ``ttl``
seconds of that time, and at most ``max_clients`` sessions are kept (the least
recently active goes first). The table is part of the replicated state, so it is
in every snapshot.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from ha_sc.kv.api import KvError

T = TypeVar("T")

DEFAULT_SESSION_TTL = 3600.0
"""Seconds (of proposal time) a client may stay silent before its session is dropped."""
DEFAULT_MAX_CLIENTS = 1024
"""Sessions kept at most; every SC replica's run is one client."""
DEFAULT_MAX_ANSWERS = 50_000
"""Answers kept per client at most (writes above its floor, i.e. still in flight)."""


class CommandTag(NamedTuple):
    """Who sent a write and which of theirs it is. Sent in the log as a plain tuple."""

    client: str
    seq: int
    floor: int
    """Every sequence number of this client below this one is answered or given up."""
    proposed_at: float
    """The proposer's wall clock when it (last) sent the write, seconds."""


class SessionExpired(KvError):
    """The client's session is gone from the table (expired or evicted): a write of it
    sent before may have been applied, and the table can no longer tell."""

    def __init__(self, client: str, seq: int) -> None:
        super().__init__(
            f"client session {client} is no longer known (expired); "
            f"whether its write {seq} was applied cannot be told"
        )
        self.client = client
        self.seq = seq


class AnswerForgotten(KvError):
    """A write below its client's floor arrived again: it was answered or given up
    before, and is not applied now."""

    def __init__(self, client: str, seq: int, floor: int) -> None:
        super().__init__(
            f"write {seq} of client {client} is below its floor {floor}: "
            "answered or given up before, not applied again"
        )
        self.client = client
        self.seq = seq
        self.floor = floor


@dataclass(slots=True)
class Session:
    """What the table keeps of one client."""

    floor: int
    last_active: float
    answers: dict[int, object] = field(default_factory=dict)


class SessionTable:
    """Per-client answers of applied writes, bounded in clients, answers and age."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_SESSION_TTL,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        max_answers: int = DEFAULT_MAX_ANSWERS,
    ) -> None:
        self.ttl = ttl
        self.max_clients = max_clients
        self.max_answers = max_answers
        self.now = 0.0
        """The newest proposal time the log has carried."""
        self.copies_answered = 0
        """Copies of applied writes answered from the table (not applied again)."""
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently active first

    def __len__(self) -> int:
        return len(self._sessions)

    def session(self, client: str) -> Session | None:
        return self._sessions.get(client)

    def fingerprint(self) -> str:
        """A digest of every session, in the table's order: equal on replicas that
        applied the same log."""
        digest = hashlib.sha256(repr(self.now).encode())
        for client, session in self._sessions.items():
            answers = sorted((seq, repr(answer)) for seq, answer in session.answers.items())
            digest.update(repr((client, session.floor, session.last_active, answers)).encode())
        return digest.hexdigest()

    def run(self, tag: CommandTag, apply: Callable[[], T]) -> T | SessionExpired | AnswerForgotten:
        """Apply a write once: its first answer for a copy, ``apply()`` otherwise.

        Only ``apply``'s answer (a revision or a KvError it returned) is remembered;
        the table's own refusals are not, since they depend on nothing but the table.
        """
        client, seq, floor, proposed_at = tag
        self.now = max(self.now, proposed_at)
        self._expire()
        session = self._sessions.get(client)
        if session is None:
            if floor > 1:
                return SessionExpired(client, seq)
            session = self._sessions[client] = Session(floor=1, last_active=self.now)
            self._evict()
        self._sessions.move_to_end(client)
        session.last_active = self.now
        self._raise_floor(session, floor)
        if seq < session.floor:
            return AnswerForgotten(client, seq, session.floor)
        if seq in session.answers:
            self.copies_answered += 1
            return session.answers[seq]  # type: ignore[return-value]
        answer = apply()
        session.answers[seq] = answer
        if len(session.answers) > self.max_answers:
            self._shed(session)
        return answer

    # internals

    def _expire(self) -> None:
        horizon = self.now - self.ttl
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if oldest.last_active >= horizon:
                return
            self._sessions.popitem(last=False)

    def _evict(self) -> None:
        while len(self._sessions) > self.max_clients:
            self._sessions.popitem(last=False)

    @staticmethod
    def _raise_floor(session: Session, floor: int) -> None:
        if floor <= session.floor:
            return
        session.floor = floor
        for seq in [s for s in session.answers if s < floor]:
            del session.answers[seq]

    def _shed(self, session: Session) -> None:
        """Too many answers kept for one client (one of its writes is stuck): keep the
        newer half; the floor rises, so a copy of a shed write is AnswerForgotten."""
        kept = sorted(session.answers)[-(self.max_answers // 2) :]
        self._raise_floor(session, kept[0])
