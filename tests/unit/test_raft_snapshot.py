"""Raft snapshot writers (forked children) run at the lowest CPU priority."""

from __future__ import annotations

import os

import pytest

from ha_sc.kv.raft_snapshot import lower_snapshot_priority

pytestmark = pytest.mark.timeout(10)


def niceness_of_a_forked_child() -> int:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its niceness and leave at once, as a snapshot writer does
        os.write(write, str(os.nice(0)).encode())
        os._exit(0)
    os.close(write)
    try:
        return int(os.read(read, 16))
    finally:
        os.close(read)
        os.waitpid(pid, 0)


def test_a_child_forked_after_the_hook_runs_at_the_lowest_priority() -> None:
    lower_snapshot_priority()
    lower_snapshot_priority()  # idempotent: one hook, not two
    assert niceness_of_a_forked_child() == 19
    assert os.nice(0) < 19  # the process itself keeps its priority
