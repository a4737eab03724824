"""SIGKILL a process appending to a ReplicaLog: every acknowledged batch survives intact.

A child process appends batches with ``fsync=always`` and prints ``base leo n`` after
each ``append`` returns. The test kills it mid-stream, reopens the log (recovery cuts
any torn tail), checks every acknowledged batch byte for byte, and does it again with a
second child appending to the recovered log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ha_sc.spu.storage import (
    FsyncPolicy,
    LogSettings,
    ReplicaLog,
    encode_records,
    iter_batches,
    make_batch,
    with_base_offset,
)

pytestmark = pytest.mark.slow  # a child process, SIGKILLed

REPO = Path(__file__).resolve().parents[2]
SETTINGS = LogSettings(segment_bytes=32 * 1024, fsync=FsyncPolicy.ALWAYS)
MAX_BATCHES = 3000
RUN_SECONDS = 1.0

CHILD = f"""
import sys, time
from pathlib import Path
from ha_sc.spu.storage import ReplicaLog
from tests.integration.test_spu_storage_crash import SETTINGS, batch_number

log = ReplicaLog.open(Path(sys.argv[1]), SETTINGS)
first = int(sys.argv[2])
for n in range(first, first + {MAX_BATCHES}):
    base, leo = log.append(batch_number(n))
    sys.stdout.write(f"{{base}} {{leo}} {{n}}\\n")
    sys.stdout.flush()
time.sleep(60)  # wait to be killed
"""


def batch_number(n: int) -> bytes:
    """Batch ``n``: 1 to 7 records, 10 to 400 bytes each, all derived from ``n``."""
    values = [f"{n}:{i}:".encode() * (1 + (n * 7 + i) % 40) for i in range(1 + n % 7)]
    return make_batch(encode_records(values), record_count=len(values), first_timestamp_ms=n)


def run_and_kill(directory: Path, first: int) -> list[tuple[int, int, int]]:
    """Start a child appending batches ``first``, ``first+1``...; SIGKILL it after
    ``RUN_SECONDS`` or ``MAX_BATCHES`` acknowledgements; the acknowledged triples."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), str(first)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    acked: list[tuple[int, int, int]] = []
    enough = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.endswith("\n"):  # a line cut by the kill was not acknowledged
                base, leo, n = map(int, line.split())
                acked.append((base, leo, n))
                if len(acked) >= MAX_BATCHES:
                    enough.set()
        enough.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        started = time.monotonic()
        while not acked and proc.poll() is None and time.monotonic() - started < 30:
            time.sleep(0.01)
        assert acked, f"the child acknowledged nothing (exit code {proc.poll()})"
        enough.wait(RUN_SECONDS)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        reader.join(10)
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return list(acked)


def check_acknowledged(log: ReplicaLog, acked: list[tuple[int, int, int]]) -> None:
    """Every acknowledged batch is where its acknowledgement said, byte for byte."""
    assert log.leo >= acked[-1][1]
    for base, leo, n in acked:
        stored, *_ = iter_batches(log.read(base, 1))
        assert (stored.header.base_offset, stored.header.next_offset) == (base, leo)
        assert bytes(stored.data) == with_base_offset(batch_number(n), base)


def test_acknowledged_batches_survive_sigkill(tmp_path: Path) -> None:
    directory = tmp_path / "orders-0"
    acked = run_and_kill(directory, 0)
    with ReplicaLog.open(directory, SETTINGS) as log:
        check_acknowledged(log, acked)
        n = acked[-1][2] + 2  # batch n-1 may be in the log too, written but not acknowledged
        base, leo = log.append(batch_number(n))
        acked.append((base, leo, n))
    acked += run_and_kill(directory, n + 1)
    with ReplicaLog.open(directory, SETTINGS) as log:
        check_acknowledged(log, acked)
        base, _ = log.append(batch_number(0))
        assert log.read(base, 1) == with_base_offset(batch_number(0), base)
