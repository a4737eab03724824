"""The marker rule of tests/conftest.py: a test that starts a process or a Raft node
without a ``slow`` marker fails, and ``etcd``, ``raft`` and ``chaos`` imply ``slow``."""

from __future__ import annotations

import subprocess
import sys

import pysyncobj
import pytest


def test_an_unmarked_test_cannot_start_a_process() -> None:
    with pytest.raises(AssertionError, match="starts an OS process but is not marked slow"):
        subprocess.Popen([sys.executable, "-c", "pass"])


def test_an_unmarked_test_cannot_start_a_raft_node() -> None:
    with pytest.raises(AssertionError, match="starts a Raft node but is not marked slow"):
        pysyncobj.SyncObj("127.0.0.1:0", [])


@pytest.mark.raft
def test_a_raft_test_is_slow(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("slow") is not None


@pytest.mark.slow
def test_a_slow_test_may_start_a_process() -> None:
    assert subprocess.run([sys.executable, "-c", "pass"], check=False).returncode == 0
