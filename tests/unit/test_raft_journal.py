"""The durable Raft journal: read back by a new journal, flushed before it answers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pysyncobj.journal import FileJournal
from pysyncobj.transport import TCPTransport

from election.raft_journal import DurableJournal, DurableTransport


def _entries(journal: Any) -> list[tuple[bytes, int, int]]:
    return [(bytes(journal[i][0]), journal[i][1], journal[i][2]) for i in range(len(journal))]


def test_every_entry_and_the_term_and_vote_are_read_back(tmp_path: Path) -> None:
    path = str(tmp_path / "raft.journal")
    journal = DurableJournal(path)
    for idx in range(1, 201):
        journal.add(f"command {idx}".encode() * (idx % 7 + 1), idx, 1 + idx // 50)
    journal.deleteEntriesFrom(150)  # the last 50 go
    journal.add(b"replacement", 151, 9)
    journal.setCurrentTerm(9, "127.0.0.1:5001")
    journal.sync()

    for reader in (DurableJournal(path), FileJournal(path)):  # same format as pysyncobj's
        assert _entries(reader) == _entries(journal)
        assert len(reader) == 151
        assert reader.getCurrentTerm() == 9
        assert reader.getVotedForNodeId() == "127.0.0.1:5001"
        reader._destroy()
    journal._destroy()


def test_a_journal_written_by_pysyncobj_loads(tmp_path: Path) -> None:
    path = str(tmp_path / "raft.journal")
    old = FileJournal(path)
    old.add(b"old", 1, 1)
    old.setCurrentTerm(3, None)
    old._destroy()
    journal = DurableJournal(path)
    assert _entries(journal) == [(b"old", 1, 1)]
    assert journal.getCurrentTerm() == 3
    journal._destroy()


def test_term_and_vote_are_fsynced_before_set_current_term_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = DurableJournal(str(tmp_path / "raft.journal"))
    fsynced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        fsynced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    journal.setCurrentTerm(4, "127.0.0.1:5002")
    assert len(fsynced) == 2  # the file, then its directory
    assert journal.meta.stores == 1
    assert not (tmp_path / "raft.journal.meta.tmp").exists()
    journal._destroy()


@pytest.mark.parametrize(
    "change",
    [
        lambda j: j.add(b"x", 2, 1),
        lambda j: j.deleteEntriesFrom(0),
        lambda j: j.deleteEntriesTo(1),
        lambda j: j.clear(),
    ],
)
def test_every_log_change_is_pending_until_synced(tmp_path: Path, change: Any) -> None:
    journal = DurableJournal(str(tmp_path / "raft.journal"))
    journal.add(b"first", 1, 1)
    journal.sync()
    synced = journal.syncs
    change(journal)
    assert journal.pending
    journal.sync()
    assert not journal.pending
    assert journal.syncs == synced + 1
    journal.sync()  # nothing pending: no flush
    assert journal.syncs == synced + 1
    journal._destroy()


def test_a_commit_index_is_recorded_only_after_the_entries_are_flushed(tmp_path: Path) -> None:
    journal = DurableJournal(str(tmp_path / "raft.journal"))
    journal.add(b"entry", 1, 1)
    journal.setRaftCommitIndex(1)
    assert not journal.pending
    assert journal.syncs == 1
    journal._destroy()


def test_the_transport_flushes_the_journal_before_each_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = DurableJournal(str(tmp_path / "raft.journal"))
    pending_at_send: list[bool] = []

    def record_send(self: Any, node: Any, message: Any) -> bool:
        pending_at_send.append(journal.pending)
        return True

    # the network is replaced here: what is checked is the order, flush then send
    monkeypatch.setattr(TCPTransport, "__init__", lambda self, *args: None)
    monkeypatch.setattr(TCPTransport, "send", record_send)

    class Node:
        def sync_journal(self) -> None:
            journal.sync()

    transport = DurableTransport(Node(), None, [])
    journal.add(b"acknowledged", 1, 1)
    assert journal.pending
    transport.send(object(), {"type": "next_node_idx"})
    assert pending_at_send == [False]
    assert journal.syncs == 1
    journal._destroy()


def test_the_snapshot_is_fsynced_before_the_entries_it_replaces_are_cleared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = tmp_path / "raft.dump"
    journal = DurableJournal(str(tmp_path / "raft.journal"), str(snapshot))
    for idx in range(1, 11):
        journal.add(b"entry", idx, 1)
    journal.deleteEntriesTo(3)  # no snapshot file yet: nothing to fsync
    assert journal.snapshot_syncs == 0
    snapshot.write_bytes(b"state up to entry 8")
    entries_when_fsynced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        entries_when_fsynced.append(len(journal))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    journal.deleteEntriesTo(5)
    assert journal.snapshot_syncs == 1
    assert entries_when_fsynced[:2] == [7, 7]  # the dump and its directory, entries still held
    assert len(journal) == 2
    journal.clear()  # a snapshot installed from the leader
    assert journal.snapshot_syncs == 2
    journal._destroy()
