"""A Raft KV node as its own OS process, for tests that kill and restart nodes.

    python -m tests.raft_peer --self 127.0.0.1:P --peers A,B --dir DIR

Every 20 ms it writes what it has applied to DIR/applied.json (revision, the keys
of the kind it was asked to report, whether it is ready, the Raft leader it knows),
so a test can see it catch up. Once its revision has stood still for half a second,
the report also carries its fingerprint (revision, digest of every object, digest
of the client-session table), to compare replicas' full state at one revision, and
how many append-entries it restarted past entries it held, or dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from ha_sc.kv.raft import RaftKv, RaftSettings

STILL_FOR = 0.5
"""Seconds without a new revision before the fingerprint is taken."""


def raft_status(node: RaftKv) -> dict[str, Any]:
    """pysyncobj's view of the log on this node (indexes, term, state, the leader's
    next and match index per follower)."""
    status = node.node.getStatus()
    return {
        key: value if isinstance(value, int | float | str | bool | None) else str(value)
        for key, value in status.items()
        if not key.startswith("partner_node_status")
    }


async def serve(args: argparse.Namespace) -> None:
    data_dir = Path(args.dir)
    settings = RaftSettings(
        compaction_min_entries=args.compaction_entries,
        durable_journal=not args.no_durable_journal,
    )
    node = RaftKv(args.self, [p for p in args.peers.split(",") if p], data_dir, settings=settings)
    report = data_dir / "applied.json"
    fingerprint: tuple[int, str, str] | None = None
    last_revision, still_since = -1, time.monotonic()
    while True:
        listing = await node.list(args.kind)
        if listing.revision != last_revision:
            last_revision, still_since = listing.revision, time.monotonic()
        elif (
            time.monotonic() - still_since > STILL_FOR
            and (fingerprint is None or fingerprint[0] != last_revision)
            and node.node.isReady()
        ):
            fingerprint = node.fingerprint()
        state: dict[str, Any] = {
            "revision": listing.revision,
            "keys": sorted(e.key for e in listing.entries),
            "ready": node.node.isReady(),
            "leader": node.raft_leader(),
            "fingerprint": fingerprint,
            "append_entries": [node.node.append_entries_trimmed, node.node.append_entries_ignored],
            "raft": raft_status(node),
        }
        tmp = report.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, report)
        await asyncio.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--self", required=True)
    parser.add_argument("--peers", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--kind", default="topics")
    parser.add_argument(
        "--no-durable-journal",
        action="store_true",
        help="do not flush the Raft journal before answering (to measure its cost)",
    )
    parser.add_argument(
        "--compaction-entries",
        type=int,
        default=RaftSettings().compaction_min_entries,
        help="log entries between snapshots",
    )
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
