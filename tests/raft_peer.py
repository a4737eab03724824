"""A Raft KV node as its own OS process, for tests that kill and restart nodes.

    python -m tests.raft_peer --self 127.0.0.1:P --peers A,B --dir DIR

Every 20 ms it writes what it has applied to DIR/applied.json (revision and
the keys of each kind it was asked to report), so a test can see it catch up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

from ha_sc.kv.raft import RaftKv


async def serve(args: argparse.Namespace) -> None:
    data_dir = Path(args.dir)
    node = RaftKv(args.self, [p for p in args.peers.split(",") if p], data_dir)
    report = data_dir / "applied.json"
    while True:
        listing = await node.list(args.kind)
        state = {
            "revision": listing.revision,
            "keys": sorted(e.key for e in listing.entries),
            "ready": node.node.isReady(),
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
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
