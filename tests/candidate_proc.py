"""One election candidate as its own OS process, for tests and benchmarks that kill it.

    python -m tests.candidate_proc --backend raft --name c1 --raft-self A --raft-peer B ...
    python -m tests.candidate_proc --backend etcd --name c1 --etcd 127.0.0.1:P --root /t/

It appends one JSON line per event to --events: ``ready``, ``won`` and ``lost``
(with epoch), ``write`` (a fenced write while leading: accepted or refused), and
after losing, ``stale_write`` (the same guard tried again for a second, as a
leader that missed its loss would: every one must be refused once a newer epoch
exists). SIGTERM resigns (graceful handover) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

from election.api import Candidate
from election.guard import Guard
from election.term import Term
from ha_sc.kv.api import KvError, KvStore

ELECTION = "sc"
WRITE_EVERY = 0.05
STALE_WRITES_FOR = 1.0


class EventLog:
    def __init__(self, path: Path, name: str) -> None:
        self._file = path.open("a", buffering=1)
        self._name = name

    def __call__(self, event: str, **fields: Any) -> None:
        record = {"ts": time.time(), "event": event, "name": self._name, **fields}
        self._file.write(json.dumps(record) + "\n")


async def fenced_write(kv: KvStore, guard: Guard, key: str) -> bool:
    try:
        await kv.create("probes", key, b"{}", guard=guard)
    except KvError:
        return False
    return True


async def lead(candidate: Candidate, kv: KvStore, emit: EventLog, name: str) -> None:
    seq = 0
    while True:
        term: Term = await candidate.wait_won()
        emit("won", epoch=term.epoch)
        while term.is_valid():  # re-checked before every action
            seq += 1
            started = time.time()
            accepted = await fenced_write(kv, term.guard, f"{name}-{seq}")
            emit("write", epoch=term.epoch, accepted=accepted, started=started)
            if not term.is_valid():
                break
            await asyncio.sleep(WRITE_EVERY)
        # the term ended at its deadline even if this process was paused and logs it late
        deadline_wall = time.time() - (time.monotonic() - term.valid_until)
        emit(
            "lost",
            epoch=term.epoch,
            reason=term.lost_reason or "renew deadline passed",
            ended=min(time.time(), deadline_wall),
        )
        deadline = time.monotonic() + STALE_WRITES_FOR
        while time.monotonic() < deadline:
            seq += 1
            started = time.time()
            accepted = await fenced_write(kv, term.guard, f"{name}-{seq}")
            emit("stale_write", epoch=term.epoch, accepted=accepted, started=started)
            await asyncio.sleep(WRITE_EVERY)


async def open_backend(args: argparse.Namespace) -> tuple[Candidate, KvStore]:
    if args.backend == "raft":
        from election.raft import RaftCandidate
        from ha_sc.kv.raft import RaftKv

        node = RaftKv(args.raft_self, args.raft_peer, Path(args.data_dir))
        await node.wait_ready()
        return RaftCandidate(node, election=ELECTION, name=args.name, address=args.name), node
    from election.etcd import EtcdCandidate
    from ha_sc.kv.etcd import EtcdKv

    kv = EtcdKv(args.etcd, root=args.root)
    candidate = EtcdCandidate(
        args.etcd, election=ELECTION, name=args.name, address=args.name, root=args.root
    )
    return candidate, kv


async def main(args: argparse.Namespace) -> None:
    emit = EventLog(Path(args.events), args.name)
    candidate, kv = await open_backend(args)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    campaign = asyncio.create_task(candidate.run(), name="campaign")
    leading = asyncio.create_task(lead(candidate, kv, emit, args.name), name="lead")
    emit("ready")
    stopping = asyncio.create_task(stop.wait(), name="await-sigterm")
    done, _ = await asyncio.wait({campaign, leading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not stopping and task.exception() is not None:
            emit("crashed", error=repr(task.exception()))
            raise SystemExit(2)
    leading.cancel()
    held = candidate.term
    resigning_at = time.time()  # the term ends as resign() starts, before any I/O
    await candidate.close()
    if held is not None:
        emit("resigned", epoch=held.epoch, ended=resigning_at)
    await asyncio.wait_for(campaign, 5)
    await kv.close()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["raft", "etcd"], required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--raft-self")
    parser.add_argument("--raft-peer", action="append", default=[])
    parser.add_argument("--data-dir")
    parser.add_argument("--etcd", action="append", default=[])
    parser.add_argument("--root", default="/ha-sc/")
    return parser.parse_args()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s.%(msecs)03d %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("pysyncobj").setLevel(logging.WARNING)
    asyncio.run(main(parse()))
