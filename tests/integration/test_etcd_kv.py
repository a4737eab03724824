"""EtcdKv against a real etcd: what only a real server can show.

Hand-written objects, a server killed under an open watch, compaction,
cascades larger than one etcd transaction, fencing and racing writers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ha_sc.kv.api import (
    EventType,
    KvStore,
    KvUnavailable,
    RevisionCompacted,
    RevisionConflict,
    StaleGuard,
    WatchEvent,
)
from ha_sc.kv.etcd import EtcdKv
from tests.etcd_server import EtcdHarness, EtcdServer, free_port, running
from tests.waiting import eventually

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(60)]

WAIT = 15.0  # seconds any single expectation may take


@pytest.fixture
def own_etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    """A server of this test alone: it gets killed or compacted."""
    with running(EtcdServer(tmp_path / "etcd")) as server:
        yield server


@pytest.fixture
async def harness(etcd_server: EtcdServer) -> AsyncIterator[EtcdHarness]:
    """A fresh key root on the session's shared server (see tests/conftest.py)."""
    harness = EtcdHarness(etcd_server)
    try:
        yield harness
    finally:
        await harness.close()


def envelope(spec: dict[str, object], owner: tuple[str, str] | None = None) -> bytes:
    document: dict[str, object] = {"spec": spec}
    if owner is not None:
        document["owner"] = {"kind": owner[0], "key": owner[1]}
    return json.dumps(document).encode()


class Collector:
    """Drains a watch into a list on a task of its own."""

    def __init__(self, kv: KvStore, kind: str, start_revision: int) -> None:
        self.events: list[WatchEvent] = []
        self._watch = kv.watch(kind, start_revision)
        self._task = asyncio.create_task(self._drain(), name=f"collect-{kind}")

    async def wait_for(self, count: int) -> list[WatchEvent]:
        def enough() -> bool:
            if self._task.done():
                self._task.result()  # re-raise what ended the watch
            return len(self.events) >= count

        await eventually(enough, timeout=WAIT, what=f"{count} watch events")
        return self.events

    async def stop(self) -> None:
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task
        await self._watch.aclose()  # type: ignore[attr-defined]

    async def _drain(self) -> None:
        async for event in self._watch:
            self.events.append(event)


async def test_object_written_with_etcdctl_is_listed_and_watched(
    harness: EtcdHarness,
) -> None:
    value = '{"spec": {"replicas": {"computed": {"partitions": 2, "replication_factor": 1}}}}'
    start = (await harness.kv.list("topics")).revision + 1
    collector = Collector(harness.kv, "topics", start)

    await asyncio.to_thread(harness.server.etcdctl, "put", f"{harness.root}topics/orders", value)

    listing = await harness.kv.list("topics")
    assert [(e.kind, e.key, e.value) for e in listing.entries] == [
        ("topics", "orders", value.encode())
    ]
    (event,) = await collector.wait_for(1)
    assert (event.type, event.kind, event.key, event.value) == (
        EventType.PUT,
        "topics",
        "orders",
        value.encode(),
    )
    assert event.revision == listing.entries[0].revision == listing.revision
    await collector.stop()


async def test_watch_delivers_every_write_once_across_a_killed_server(
    own_etcd: EtcdServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ha_sc.kv.etcd_watch")
    kv = EtcdKv([own_etcd.endpoint], root="/kill/")
    try:
        start = (await kv.list("spus")).revision + 1
        collector = Collector(kv, "spus", start)
        written = [await kv.create("spus", "spu-0", envelope({"id": 0}))]
        await collector.wait_for(1)  # the watch is established
        written += [await kv.create("spus", f"spu-{i}", envelope({"id": i})) for i in (1, 2)]

        own_etcd.kill()  # possibly before the watch has seen spu-1 and spu-2
        await asyncio.to_thread(own_etcd.start)
        written += [await kv.create("spus", f"spu-{i}", envelope({"id": i})) for i in (3, 4)]

        events = await collector.wait_for(5)
        await asyncio.sleep(0.3)  # room for a duplicate to show up
        assert [e.key for e in events] == [f"spu-{i}" for i in range(5)]
        assert [e.revision for e in events] == written
        assert "etcd watch of spus lost" in caplog.text
        await collector.stop()
    finally:
        await kv.close()


async def test_watch_from_a_compacted_revision_raises(own_etcd: EtcdServer) -> None:
    kv = EtcdKv([own_etcd.endpoint], root="/compact/")
    try:
        revisions = [await kv.create("topics", f"t{i}", envelope({})) for i in range(5)]
        oldest_kept = revisions[3]
        await asyncio.to_thread(own_etcd.compact, oldest_kept)

        watch = kv.watch("topics", revisions[1])
        with pytest.raises(RevisionCompacted) as caught:
            async with asyncio.timeout(WAIT):
                await anext(watch)
        assert caught.value.requested == revisions[1]
        assert caught.value.compacted == oldest_kept - 1

        kept = kv.watch("topics", oldest_kept)  # the oldest revision kept still works
        async with asyncio.timeout(WAIT):
            first = await anext(kept)
        assert (first.key, first.revision) == ("t3", oldest_kept)
        await kept.aclose()  # type: ignore[attr-defined]
    finally:
        await kv.close()


async def test_cascade_delete_beyond_one_transaction_removes_children_first(
    harness: EtcdHarness,
) -> None:
    kv = harness.kv
    await kv.create("topics", "big", envelope({}))
    children = [f"big-{i}" for i in range(250)]
    await asyncio.gather(
        *(kv.create("partitions", c, envelope({}, ("topics", "big"))) for c in children)
    )
    await kv.create("replicas", "big-0-a", envelope({}, ("partitions", "big-0")))
    await kv.create("spus", "5001", envelope({"id": 5001}))  # owned by nobody: stays
    start = (await kv.list("topics")).revision + 1
    watches = {kind: Collector(kv, kind, start) for kind in ("topics", "partitions", "replicas")}

    deleted_at = await kv.delete("topics", "big")

    (topic_gone,) = await watches["topics"].wait_for(1)
    partitions_gone = await watches["partitions"].wait_for(250)
    (replica_gone,) = await watches["replicas"].wait_for(1)
    assert topic_gone.type == EventType.DELETE
    assert topic_gone.revision == deleted_at
    assert sorted(e.key for e in partitions_gone) == sorted(children)
    assert all(e.type == EventType.DELETE for e in partitions_gone)
    assert max(e.revision for e in partitions_gone) < deleted_at
    assert len({e.revision for e in partitions_gone}) >= 3  # at most 100 per transaction
    first_chunk = min(e.revision for e in partitions_gone)
    assert replica_gone.revision == first_chunk  # a grandchild goes no later than its owner
    assert (await kv.list("partitions")).entries == ()
    assert [e.key for e in (await kv.list("spus")).entries] == ["5001"]
    for collector in watches.values():
        await collector.stop()


@pytest.mark.parametrize("racing_child", ["t-0", "t-1"], ids=["changed", "created"])
async def test_cascade_racing_a_writer_leaves_no_orphan(
    harness: EtcdHarness, monkeypatch: pytest.MonkeyPatch, racing_child: str
) -> None:
    """Another writer changes or adds an owned object right after the cascade has read them."""
    kv = harness.kv
    await kv.create("topics", "t", envelope({}))
    await kv.create("partitions", "t-0", envelope({}, ("topics", "t")))
    scan = kv._scan
    scans = 0

    async def scan_then_race() -> object:
        nonlocal scans
        result = await scan()
        scans += 1
        if scans == 1:
            value = envelope({"racing": True}, ("topics", "t")).decode()
            key = f"{harness.root}partitions/{racing_child}"
            await asyncio.to_thread(harness.server.etcdctl, "put", key, value)
        return result

    monkeypatch.setattr(kv, "_scan", scan_then_race)
    await kv.delete("topics", "t")

    assert scans == 2
    assert await kv.get("topics", "t") is None
    assert (await kv.list("partitions")).entries == ()


async def test_delete_with_a_stale_revision_leaves_owned_objects(harness: EtcdHarness) -> None:
    kv = harness.kv
    created = await kv.create("topics", "t", envelope({}))
    await kv.create("partitions", "t-0", envelope({}, ("topics", "t")))
    await kv.update("topics", "t", envelope({"changed": True}), expected_revision=created)

    with pytest.raises(RevisionConflict):
        await kv.delete("topics", "t", expected_revision=created)
    assert await kv.get("partitions", "t-0") is not None


async def test_stale_guard_is_refused_and_nothing_is_written(harness: EtcdHarness) -> None:
    kv = harness.kv
    old = await harness.current_guard("sc")
    revision = await kv.create("topics", "kept", envelope({"v": 1}), guard=old)
    new = await harness.supersede(old)
    assert new.epoch > old.epoch
    before = (await kv.list("topics")).revision

    with pytest.raises(StaleGuard):
        await kv.create("topics", "new", envelope({}), guard=old)
    with pytest.raises(StaleGuard):
        await kv.update("topics", "kept", envelope({"v": 2}), expected_revision=revision, guard=old)
    with pytest.raises(StaleGuard):
        await kv.delete("topics", "kept", guard=old)

    listing = await kv.list("topics")
    assert listing.revision == before
    assert [(e.key, e.value) for e in listing.entries] == [("kept", envelope({"v": 1}))]
    assert await kv.update(
        "topics", "kept", envelope({"v": 2}), expected_revision=revision, guard=new
    )


async def test_one_of_many_racing_updates_wins(harness: EtcdHarness) -> None:
    kv = harness.kv
    base = await kv.create("spus", "5001", envelope({"id": 5001}))
    other = await harness.open_another()

    async def update(writer: int) -> int:
        store = kv if writer % 2 else other
        return await store.update("spus", "5001", envelope({"w": writer}), expected_revision=base)

    results = await asyncio.gather(*(update(w) for w in range(10)), return_exceptions=True)

    wins = [r for r in results if isinstance(r, int)]
    conflicts = [r for r in results if isinstance(r, RevisionConflict)]
    assert len(wins) == 1
    assert len(conflicts) == 9
    assert {c.actual for c in conflicts} == {wins[0]}
    stored = await kv.get("spus", "5001")
    assert stored is not None
    assert stored.revision == wins[0]


async def test_unreachable_etcd_raises_kv_unavailable() -> None:
    kv = EtcdKv([f"127.0.0.1:{free_port()}"], request_timeout=0.5)
    try:
        async with asyncio.timeout(5):
            with pytest.raises(KvUnavailable, match="unreachable"):
                await kv.list("topics")
            with pytest.raises(KvUnavailable, match="may or may not have been applied"):
                await kv.create("topics", "t", envelope({}))
    finally:
        await kv.close()


async def test_close_ends_open_watches_quietly(etcd_server: EtcdServer) -> None:
    kv = EtcdKv([etcd_server.endpoint], root="/closing/")
    start = (await kv.list("topics")).revision + 1
    seen = asyncio.Event()

    async def drain() -> None:
        async for _ in kv.watch("topics", start):
            seen.set()

    task = asyncio.create_task(drain(), name="drain-topics")
    await kv.create("topics", "t", envelope({}))
    async with asyncio.timeout(WAIT):
        await seen.wait()
        await kv.close()
        await task  # the watch ended without an error
    with pytest.raises(KvUnavailable, match="closed"):
        await kv.list("topics")


async def test_a_call_under_way_when_the_client_closes_raises_kv_unavailable(
    own_etcd: EtcdServer,
) -> None:
    kv = EtcdKv([own_etcd.endpoint], root="/closing-call/")
    await kv.list("topics")  # connected
    own_etcd.pause()
    try:
        listing = asyncio.create_task(kv.list("topics"), name="list-while-closing")
        await asyncio.sleep(0.2)  # the Range is sent and waits for the paused server
        await kv.close()
        async with asyncio.timeout(WAIT):
            with pytest.raises(KvUnavailable, match="closed"):
                await listing
    finally:
        own_etcd.resume()
