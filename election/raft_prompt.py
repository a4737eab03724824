"""A command submitted to a Raft leader leaves for the followers in the tick that takes it
when nothing else is in flight, and that tick comes as soon as the command is submitted.

pysyncobj 0.3.17 with ``appendEntriesUseBatch`` (its default, and ours) leaves a
submitted command in its queue until the Raft thread's next tick (its poll waits up to
``autoTickPeriod``, 5 ms), logs it at the end of that tick, and sends it with the next
append-entries that is due (``appendEntriesPeriod`` after the last one): 0-10 ms of
waiting in a commit that takes about 10 ms on an idle machine. Without batching it
wakes the thread per command and sends an append-entries (so a journal flush) per
command, which a fill of many commands pays for.

``PromptCommit`` keeps the batching and cuts the waits, by Nagle's rule for TCP: a
submitted command wakes the Raft thread (once per tick at most: the wake-up stays pending
until a tick takes the queue), and a leader sends what a tick took from the queue at
once, every one in one append-entries per follower (one journal flush), when its log was
all committed (nothing in flight) or when its commit index moved since its last
append-entries (the answers came back, which also tells the followers the commit without
waiting for a heartbeat). Otherwise the commands go with the next append-entries, as
before, so many writes at once still go out in few messages and flushes (sending
whatever a tick took at once, in flight or not, cost `bench.kv_write` a quarter of its
throughput with 64 writes in flight). An idle node submits nothing and ticks as before.

A leader also flushes its journal after its append-entries leave rather than before
(``DurableTransport`` flushes before every other message), so its own flush runs while
the followers write theirs: one flush less on a commit's path. Raft allows it (Ongaro's
thesis, 10.2.1): the leader counts its own entries towards a commit only once they are
on its disk (``DurableJournal.setRaftCommitIndex`` flushes first), so nothing it has
not flushed is acknowledged; an entry that only followers hold when the leader fails is
kept if a majority holds it (no node without it can win their votes) and may be
dropped otherwise, like any entry not committed.

It reads pysyncobj 0.3.17's private names; on a pysyncobj without them it warns once
and leaves the timing as pysyncobj has it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pysyncobj import SyncObj
from pysyncobj.pipe_notifier import PipeNotifier

from election.raft_journal import DurableSyncObj

log = logging.getLogger(__name__)

_SEND = "_SyncObj__sendAppendEntries"
_PRIVATE = ("_SyncObj__getCurrentLogIndex", _SEND)
_COMMIT_INDEX = "_SyncObj__raftCommitIndex"  # set in SyncObj.__init__


class PromptCommit(DurableSyncObj):
    """DurableSyncObj whose leader logs and sends a submitted command without waiting
    for its tick and append-entries periods (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._prompt = all(hasattr(SyncObj, name) for name in _PRIVATE)
        if not self._prompt:
            log.warning(
                "this pysyncobj has no %s: a command waits for the next Raft tick and "
                "append-entries (see election/raft_prompt.py)",
                " / ".join(_PRIVATE),
            )
        self._waker: PipeNotifier | None = None
        """Wakes the Raft thread's poll; made on that thread, by its first tick."""
        self._wake_pending = False
        self._commit_sent = -1
        """The commit index the last append-entries carried."""
        self._sending_entries: int | None = None
        """The thread sending this leader's append-entries (its flush comes after them;
        a message another thread sends meanwhile is flushed before, as ever)."""
        super().__init__(*args, **kwargs)

    def sync_journal(self) -> None:
        if self._sending_entries != threading.get_ident():
            super().sync_journal()

    def _SyncObj__sendAppendEntries(self) -> None:
        """pysyncobj's send of a leader's append-entries, its journal flushed after them."""
        if not self._prompt:
            super()._SyncObj__sendAppendEntries()
            return
        self._commit_sent = getattr(self, _COMMIT_INDEX, -1)
        self._sending_entries = threading.get_ident()
        try:
            super()._SyncObj__sendAppendEntries()
        finally:
            self._sending_entries = None
        self.sync_journal()

    def _applyCommand(self, command: Any, callback: Any, commandType: Any = None) -> None:
        super()._applyCommand(command, callback, commandType)
        waker = self._waker
        if waker is not None and not self._wake_pending:
            # set before the notification: the tick clears it before it takes the queue,
            # so a command queued after that clearing wakes the thread again
            self._wake_pending = True
            waker.notify()

    def _checkCommandsToApply(self) -> None:
        """Take the queued commands (pysyncobj's step of each tick); a leader with
        nothing in flight sends what it took at once, and so does one whose commit
        index moved since its last append-entries (the answers came back)."""
        if not self._prompt:
            super()._checkCommandsToApply()
            return
        if self._waker is None:
            self._waker = PipeNotifier(self._poller)
        self._wake_pending = False
        last = self._SyncObj__getCurrentLogIndex()
        idle = getattr(self, _COMMIT_INDEX, -1) >= last
        super()._checkCommandsToApply()
        if not self._isLeader():
            return
        took = self._SyncObj__getCurrentLogIndex() > last
        committed = getattr(self, _COMMIT_INDEX, -1) > self._commit_sent
        if (took and idle) or committed:
            self._SyncObj__sendAppendEntries()
