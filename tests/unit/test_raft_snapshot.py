"""Raft snapshot writers (forked children) run at the lowest CPU priority and make their
file durable before renaming it into place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pysyncobj import serializer

from ha_sc.kv.raft_snapshot import lower_snapshot_priority

pytestmark = pytest.mark.timeout(10)


def in_a_forked_child(written: Path, target: Path) -> tuple[int, bool]:
    """The niceness of a child forked now, and whether its rename of ``written`` into
    ``target`` (pysyncobj's, as a snapshot writer makes it) was durable."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once, as a snapshot writer does
        serializer.atomicReplace(str(written), str(target))
        durable = getattr(serializer.atomicReplace, "durable", False)
        os.write(write, f"{os.nice(0)} {int(durable)}".encode())
        os._exit(0)
    os.close(write)
    try:
        niceness, durable = os.read(read, 16).split()
        return int(niceness), durable == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)


def test_a_snapshot_writer_runs_at_the_lowest_priority_and_syncs_its_file(
    tmp_path: Path,
) -> None:
    written, target = tmp_path / "raft.dump.tmp", tmp_path / "raft.dump"
    written.write_bytes(b"state")
    own_niceness = os.nice(0)
    lower_snapshot_priority()
    lower_snapshot_priority()  # idempotent: one hook, not two
    assert in_a_forked_child(written, target) == (19, True)
    assert target.read_bytes() == b"state"
    assert os.nice(0) == own_niceness  # the process itself keeps its priority
    assert not getattr(serializer.atomicReplace, "durable", False)  # and pysyncobj's rename
