"""pysyncobj's journal made durable: what a node has answered for survives a power loss.

pysyncobj 0.3.17 writes its log through mmap and flushes it only when the node is
destroyed, and writes its term/vote file aside and renames it into place without
fsync. Raft requires a node's log entries, current term and vote to be on disk
before any message that reflects them leaves: a follower that acknowledges an entry
and then forgets it can let a leader without that committed entry be elected, and a
node that forgets its vote can vote twice in one term.

``DurableJournal`` keeps pysyncobj's file format (journals written before it still
load) and adds:

- the term/vote file written aside, fsynced, renamed, and its directory fsynced, before
  ``setCurrentTerm`` returns (a vote is granted and a candidacy announced only after);
- log changes (add, clear, truncation) marked pending and flushed by ``sync`` (msync
  of the mapping, which on Linux also makes the file's size durable);
- the snapshot file, which pysyncobj renames into place without fsync, fsynced before
  the log entries it replaces are cleared from the journal.

``DurableTransport`` calls ``sync`` before every message the node sends, so one flush
covers every entry a message handler or a tick appended, before the answer
(next_node_idx), the vote, or the leader's own append-entries leave. A leader counts
itself towards a majority, so ``setRaftCommitIndex`` syncs too (a single-node group
commits without sending anything).

``DurableSyncObj`` builds its journal through pysyncobj's ``createJournal`` name,
replaced once by a wrapper that hands out a ``DurableJournal`` only inside a
``DurableSyncObj`` being constructed on that thread; any other SyncObj gets
pysyncobj's own journal.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pysyncobj.syncobj as _syncobj_module
from pysyncobj import SyncObj
from pysyncobj.journal import FileJournal, MetaStorer
from pysyncobj.pickle import dumps
from pysyncobj.transport import TCPTransport

_TMP_SUFFIX = ".tmp"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DurableMetaStorer(MetaStorer):  # type: ignore[misc]
    """pysyncobj's term/vote/commit-index file, replaced durably."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._path = Path(path)
        self.stores = 0
        """Times the file was written and fsynced (file and directory)."""

    def storeMeta(self, meta: dict[str, Any]) -> None:
        aside = self._path.with_name(self._path.name + _TMP_SUFFIX)
        with open(aside, "wb") as f:
            f.write(dumps(meta))
            f.flush()
            os.fsync(f.fileno())
        os.replace(aside, self._path)
        _fsync_dir(self._path.parent)
        self.stores += 1


class DurableJournal(FileJournal):  # type: ignore[misc]
    """pysyncobj's FileJournal whose changes are flushed by ``sync`` and whose term and
    vote are durable when ``setCurrentTerm`` returns."""

    def __init__(self, journal_file: str, snapshot_file: str | None = None) -> None:
        super().__init__(journal_file)
        self._snapshot = None if snapshot_file is None else Path(snapshot_file)
        self.meta = DurableMetaStorer(journal_file + ".meta")
        # FileJournal keeps its storer under a private name; its term/vote writes go
        # through it.
        self._FileJournal__metaStorer = self.meta
        self._lock = threading.RLock()
        self._pending = False
        self._rewriting = False
        self.syncs = 0
        """Times pending log changes were flushed to disk."""
        self.snapshot_syncs = 0
        """Times the snapshot file was fsynced before entries were cleared."""
        self.flush()
        _fsync_dir(Path(journal_file).resolve().parent)  # the file's creation

    def flush(self) -> None:
        """Write the journal's changes to disk by ``fsync`` on its file, not pysyncobj's
        ``mmap.flush``: ``msync`` runs holding the GIL, so on a busy disk every thread of
        the replica (the lease renewals' included) stood still for the whole write;
        ``fsync`` lets them run. On Linux it writes the pages changed through the
        mapping as well (they are the file's page cache)."""
        mapped = self._FileJournal__journalFile  # pysyncobj's ResizableFile
        os.fsync(mapped._ResizableFile__f.fileno())

    @property
    def pending(self) -> bool:
        """Whether log changes are not yet on disk."""
        return self._pending

    def sync(self) -> None:
        """Flush pending log changes to disk (nothing to do when there are none).

        A message can be sent from another thread than the Raft thread (pysyncobj's
        transferLeadership does), so changes and flushes take a lock."""
        with self._lock:
            if self._pending:
                self.flush()
                self._pending = False
                self.syncs += 1

    def add(self, command: bytes, idx: int, term: int) -> None:
        with self._lock:
            super().add(command, idx, term)
            self._pending = True

    def clear(self) -> None:
        with self._lock:
            if not self._rewriting:
                self._sync_snapshot()
            super().clear()
            self._pending = True

    def deleteEntriesFrom(self, entryFrom: int) -> None:
        with self._lock:
            super().deleteEntriesFrom(entryFrom)
            self._pending = True

    def deleteEntriesTo(self, entryTo: int) -> None:
        with self._lock:
            self._sync_snapshot()
            self._rewriting = True  # FileJournal rewrites the log through clear and add
            try:
                super().deleteEntriesTo(entryTo)
            finally:
                self._rewriting = False
            self._pending = True

    def _sync_snapshot(self) -> None:
        """Make the snapshot file durable before the entries it replaces leave the log:
        pysyncobj writes it (aside, then renamed) without fsync."""
        if self._snapshot is None or not self._snapshot.exists():
            return
        fd = os.open(self._snapshot, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self._snapshot.resolve().parent)
        self.snapshot_syncs += 1

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:
        self.sync()  # a leader counts its own entries towards the commit
        super().setRaftCommitIndex(raftCommitIndex)


class DurableTransport(TCPTransport):  # type: ignore[misc]
    """pysyncobj's TCP transport that flushes the node's journal before each send."""

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any) -> None:
        super().__init__(syncObj, selfNode, otherNodes)
        self._sync_journal: Callable[[], None] = getattr(syncObj, "sync_journal", _nothing)

    def send(self, node: Any, message: Any) -> bool:
        self._sync_journal()
        return bool(super().send(node, message))


def _nothing() -> None:
    return None


_building = threading.local()
_install_lock = threading.Lock()
_original: dict[str, Callable[[str | None], Any]] = {}
"""pysyncobj's own createJournal, once the wrapper has replaced it."""


def _create_journal(journal_file: str | None = None) -> Any:
    factory: Callable[[str], DurableJournal] | None = getattr(_building, "factory", None)
    if factory is None or journal_file is None:
        return _original["createJournal"](journal_file)
    return factory(journal_file)


def _install() -> None:
    with _install_lock:
        if "createJournal" not in _original:
            _original["createJournal"] = _syncobj_module.createJournal
            _syncobj_module.createJournal = _create_journal


@contextmanager
def _journals_from(factory: Callable[[str], DurableJournal]) -> Iterator[None]:
    _install()
    _building.factory = factory
    try:
        yield
    finally:
        _building.factory = None


class DurableSyncObj(SyncObj):  # type: ignore[misc]
    """SyncObj whose file journal is a DurableJournal, flushed before each message sent.

    ``durable=False`` keeps pysyncobj's journal as it is (for benchmarks: the cost of
    the flush). A node without a journal file keeps its log in memory either way.
    """

    def __init__(self, *args: Any, durable: bool = True, **kwargs: Any) -> None:
        self.journal: DurableJournal | None = None
        if not durable:
            super().__init__(*args, **kwargs)
            return

        def build(journal_file: str) -> DurableJournal:
            conf = getattr(self, "_SyncObj__conf", None)
            snapshot = getattr(conf, "fullDumpFile", None)
            self.journal = DurableJournal(journal_file, snapshot)
            return self.journal

        with _journals_from(build):
            super().__init__(*args, transportClass=DurableTransport, **kwargs)

    def sync_journal(self) -> None:
        """Flush what the journal holds and has not flushed yet."""
        if self.journal is not None:
            self.journal.sync()
