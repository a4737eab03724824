"""ReplicaLog append throughput: 100-byte records in batches of 1000, by fsync policy.

    .venv/bin/python -m bench.storage_append [--runs 5] [--batches 300] [--records 1000]

Each run appends ``--batches`` ready-made batches to a fresh log in a temporary
directory (the client's record encoding is done beforehand and not timed) and closes
it (the final flush is timed). Prints the median over the runs of records/s and MB/s
(of batch bytes, headers included) for ``fsync=never`` and ``fsync=always``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import machine
from ha_sc.spu.storage import FsyncPolicy, LogSettings, ReplicaLog, encode_records, make_batch


def one_run(batches: list[bytes], settings: LogSettings) -> float:
    """Seconds to append ``batches`` to a new log and close it."""
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as name:
        log = ReplicaLog.open(Path(name) / "bench-0", settings)
        started = time.perf_counter()
        try:
            for batch in batches:
                log.append(batch)
        finally:
            log.close()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--records", type=int, default=1000, help="records per batch")
    parser.add_argument("--record-bytes", type=int, default=100)
    parser.add_argument("--segment-mib", type=int, default=64)
    args = parser.parse_args()

    values = [bytes([n % 256]) * args.record_bytes for n in range(args.records)]
    payload = encode_records(values)
    batches = [
        make_batch(payload, record_count=args.records, first_timestamp_ms=n)
        for n in range(args.batches)
    ]
    total_bytes = sum(len(b) for b in batches)
    records = args.records * args.batches
    print(machine())
    print(
        f"{args.batches} batches x {args.records} records x {args.record_bytes} B "
        f"({len(batches[0])} B per batch), median of {args.runs} runs, "
        f"segments of {args.segment_mib} MiB"
    )
    for policy in (FsyncPolicy.NEVER, FsyncPolicy.ALWAYS):
        settings = LogSettings(segment_bytes=args.segment_mib << 20, fsync=policy)
        seconds = statistics.median(one_run(batches, settings) for _ in range(args.runs))
        print(
            f"fsync={policy.value:<7} {records / seconds:>12,.0f} records/s "
            f"{total_bytes / seconds / 1e6:>8.1f} MB/s "
            f"{seconds / args.batches * 1e6:>8.0f} us/batch"
        )


if __name__ == "__main__":
    main()
