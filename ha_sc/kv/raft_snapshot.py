"""Raft snapshots (pysyncobj's log compaction) kept out of the replicas' way.

Every ``logCompactionMinTime`` (300 s) or ``compaction_min_entries`` entries, each Raft
node forks a child that pickles and gzips the whole KV state into its dump file. At
100k partitions that is seconds of CPU, and the three replicas of a cluster started
together reached the 300 s mark together: on 2 cores, three children compressing at
once take the CPU the replicas need for their heartbeats and lease renewals, and a
renewal missed its deadline (seen at 30k: three children for over 30 s, and the
leader's lease lost as they ended). So the child runs at the lowest CPU priority
(``lower_snapshot_priority``): it waits for idle CPU, the replicas and SPUs do not
wait for it. A snapshot that takes longer only means the log is trimmed later; what
is committed is in the journal already. (pysyncobj's ``logCompactionSplit``, nodes
taking turns, was not taken: it holds a node's snapshot back until its own slice of
the 300 s interval even when the entry count calls for one now.)

The child also fsyncs the snapshot file before renaming it into place
(``_durable_replace``): the journal fsyncs it before it drops the entries it replaces
(``election/raft_journal.py``), on the Raft thread, and a 100 MB file still dirty in the
page cache kept that thread, its heartbeats included, waiting on the disk. Written
durably by the slow child, the file leaves the journal's fsync nothing to do.

An SC replica forks for nothing else (its subprocesses, if any, are spawned without
Python's fork hooks), so the hook sees only snapshot writers.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable

from pysyncobj import serializer

SNAPSHOT_NICENESS = 19
"""Added to the snapshot child's niceness (the kernel caps it at 19: the lowest)."""


@functools.cache  # once per process: a hook cannot be taken back
def lower_snapshot_priority() -> None:
    """From now on, a child forked by this process (a snapshot writer) lowers its own
    CPU priority to the lowest first; idempotent."""
    os.register_at_fork(after_in_child=_lowest_priority)


def _lowest_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(SNAPSHOT_NICENESS)
    replace = serializer.atomicReplace
    if getattr(replace, "durable", False):
        return
    serializer.atomicReplace = _durable_replace(replace)


def _durable_replace(replace: Callable[[str, str], object]) -> Callable[[str, str], object]:
    """pysyncobj's rename of the written snapshot into place, after an fsync of it."""

    def durable(written: str, target: str) -> object:
        fd = os.open(written, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return replace(written, target)

    durable.durable = True  # type: ignore[attr-defined]
    return durable
