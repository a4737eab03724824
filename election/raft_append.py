"""Append-entries on a follower as Raft specifies it: entries the follower holds stay.

pysyncobj 0.3.17 (``SyncObj.__onMessageReceived``) deletes every entry after
``prevLogIdx`` whenever the follower holds any, then appends what the message
carries. Raft (figure 2, AppendEntries rule 3) deletes only from the first entry
that *conflicts* (same index, other term): an append-entries can arrive late or be
sent again, and what follows the entries it carries may already be held, acknowledged
to the leader and applied.

Under load the leader does send entries again: a follower that missed messages
(a connection dropped, a pause) answers "reset" with the index it needs; answers of
that kind still in flight arrive after the follower has caught up, and the leader
moves its next index back below what the follower holds and has applied. pysyncobj
then deletes those entries and logs CRITICAL "truncating already-applied log entries
... state machine may have diverged". The entries it appends back are the same ones
(same index and term, so the same entries by Raft's log matching), so the state did
not diverge; but meanwhile the follower lacked entries it had acknowledged, and a
follower in that state that votes can help elect a leader without a committed entry.

``trim_held`` rewrites such a message before pysyncobj sees it, so that pysyncobj
truncates only where Raft would: it starts the message after the last entry the
follower is known to share with the leader.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pysyncobj import SyncObj

from election.entry_arrivals import EntryArrivals
from election.raft_prompt import PromptCommit

log = logging.getLogger(__name__)

Entry = tuple[bytes, int, int]
"""A pysyncobj log entry: (command, index, term)."""


NO_TERM = -1
"""A term no entry has: a message naming it as its previous entry's is refused, and
the follower asks the leader to send from that entry."""

IGNORED: dict[str, Any] = {"type": "append_entries_ignored"}
"""What ``trim_held`` returns for a message to drop, as if lost on the way (Raft
tolerates lost messages; the leader's next ones carry the entries after it)."""


def trim_held(
    message: dict[str, Any],
    *,
    term_at: Callable[[int], int | None],
    last_index: int,
    commit_index: int,
) -> dict[str, Any] | None:
    """The append-entries ``message`` restarted after what the follower already shares
    with the leader; ``IGNORED`` to drop it; None to leave it as it is.

    ``term_at(i)`` is the term of the follower's entry ``i`` (None when it holds none),
    ``last_index`` its last entry, ``commit_index`` the highest entry it knows committed.
    A follower's entries are known to match the leader's up to the furthest of: the
    entries the message carries that it holds with the same term; its committed
    entries; and, when its last entry is of the leader's own term, all of them (a
    leader never rewrites its own entries). Entries carried that conflict are replaced
    from the first conflict on. A message that carries entries, all held, while the
    follower holds more it cannot show to be shared is dropped: pysyncobj would delete
    them, Raft keeps them, and the leader's next messages carry the entries after it.
    A message without entries marks the end of the leader's log: what the follower
    holds past that and cannot show to be shared is not the leader's, and goes.
    """
    if message.get("type") != "append_entries":
        return None
    if "prevLogIdx" not in message or "transmission" in message:
        return None
    prev: int = message["prevLogIdx"]
    held = term_at(prev) if prev <= last_index else None
    if held != message["prevLogTerm"]:
        return _backed_up(
            message, term_at=term_at, last_index=last_index, commit_index=commit_index
        )
    if last_index <= prev:
        return None  # nothing held after it
    entries: list[Entry] = list(message.get("entries", []))
    for position, (_, index, term) in enumerate(entries):
        if index > last_index:
            # every entry up to last_index matches: append only what is new
            return _restarted(message, last_index, term_at, entries[position:])
        if term_at(index) != term:
            # the first conflict: Raft deletes from here, not before
            return _restarted(message, index - 1, term_at, entries[position:])
    carried = entries[-1][1] if entries else prev
    shared = max(carried, min(commit_index, last_index))
    if term_at(last_index) == message["term"]:
        shared = last_index
    if entries and shared < last_index:
        return IGNORED
    return _restarted(message, shared, term_at, [])


def _backed_up(
    message: dict[str, Any],
    *,
    term_at: Callable[[int], int | None],
    last_index: int,
    commit_index: int,
) -> dict[str, Any] | None:
    """A message pysyncobj refuses (the follower lacks its previous entry, or holds
    it with another term), made to ask the leader for the entry after the follower's
    commit index when that is further back than what pysyncobj would ask for.

    pysyncobj answers "send from my last entry + 1" when the previous entry is
    missing, and "send from prevLogIdx" when its term differs. A follower whose last
    entries come from a deposed leader gives both answers at once to the leader's
    pipelined messages, and the first undoes the one-step walk back of the second:
    the follower stays where it is until the leader sends it a snapshot (seen here:
    about 300 s, pysyncobj's time between snapshots). Its committed entries are the
    leader's, so the entry after them is where the leader can start."""
    if term_at(last_index) == message["term"]:
        return None  # a follower whose last entry is the leader's asks for the right one
    asked = last_index + 1 if term_at(message["prevLogIdx"]) is None else message["prevLogIdx"]
    start = commit_index + 1
    if start >= asked or start > last_index:
        return None
    return {**message, "prevLogIdx": start, "prevLogTerm": NO_TERM, "entries": []}


def _restarted(
    message: dict[str, Any], prev: int, term_at: Callable[[int], int | None], entries: list[Entry]
) -> dict[str, Any] | None:
    if prev == message["prevLogIdx"] and len(entries) == len(message.get("entries", [])):
        return None
    return {**message, "prevLogIdx": prev, "prevLogTerm": term_at(prev), "entries": entries}


class RaftSyncObj(PromptCommit):
    """pysyncobj's SyncObj with append-entries trimmed by ``trim_held`` on a follower,
    its journal flushed before each message it sends (election/raft_journal.py), and
    a leader's commands sent as soon as they are submitted (election/raft_prompt.py).

    It also notes when each entry it appends arrived (``arrivals``, see
    election/entry_arrivals.py): from a leader's append-entries on a follower, from
    the command queue on a leader. ``applying_arrival`` tells a consumer, while it
    applies an entry, when that entry arrived.

    It reads the follower's log through pysyncobj 0.3.17's private names; on a
    pysyncobj without them it warns once, leaves messages as they are and notes no
    arrivals (consumers then count from when they apply).
    """

    _PRIVATE = (
        "_SyncObj__getEntries",
        "_SyncObj__getCurrentLogIndex",
        "_SyncObj__onMessageReceived",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._trims = all(hasattr(SyncObj, name) for name in self._PRIVATE)
        if not self._trims:
            log.warning(
                "this pysyncobj has no %s: a follower may delete log entries it holds "
                "when they are sent again (see election/raft_append.py)",
                " / ".join(self._PRIVATE),
            )
        self.append_entries_trimmed = 0
        """Append-entries this node restarted past entries it already held."""
        self.append_entries_ignored = 0
        """Append-entries this node dropped (all held, more held past them)."""
        self.arrivals = EntryArrivals()
        """When the entries this node holds and has not applied yet arrived."""
        super().__init__(*args, **kwargs)

    def applying_arrival(self) -> float | None:
        """While a consumer applies an entry (on the Raft thread): when that entry
        arrived on this node's monotonic clock; None when not noted."""
        if not self._trims:
            return None
        return self.arrivals.arrived(self._last_applied() + 1)

    def _SyncObj__onMessageReceived(self, node: Any, message: Any) -> None:
        if not (
            self._trims and isinstance(message, dict) and message.get("type") == "append_entries"
        ):
            super()._SyncObj__onMessageReceived(node, message)
            return
        arrived = time.monotonic()
        trimmed = trim_held(
            message,
            term_at=self._term_at,
            last_index=self._SyncObj__getCurrentLogIndex(),
            commit_index=getattr(self, "_SyncObj__raftCommitIndex", 0),
        )
        if trimmed is IGNORED:
            self.append_entries_ignored += 1
            return
        if trimmed is not None:
            self.append_entries_trimmed += 1
            message = trimmed
        super()._SyncObj__onMessageReceived(node, message)
        entries: list[Entry] = message.get("entries") or []
        if entries and self._term_at(entries[-1][1]) == entries[-1][2]:
            self.arrivals.received(entries[0][1], entries[-1][1], arrived)
        self.arrivals.forget_through(self._last_applied())

    def _checkCommandsToApply(self) -> None:
        """The leader appends queued commands here: each arrived by the end of it."""
        if not self._trims:
            super()._checkCommandsToApply()
            return
        before = self._SyncObj__getCurrentLogIndex()
        super()._checkCommandsToApply()
        after = self._SyncObj__getCurrentLogIndex()
        if after > before:
            self.arrivals.received(before + 1, after, time.monotonic())

    def _last_applied(self) -> int:
        return int(getattr(self, "_SyncObj__raftLastApplied", 0))

    def _term_at(self, index: int) -> int | None:
        entries = self._SyncObj__getEntries(index, 1)
        return int(entries[0][2]) if entries else None
