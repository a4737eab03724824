"""The dispatcher keeps a store equal to the KV; the supervisor makes its failures fatal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable

import pytest

from election.guard import Guard
from ha_sc.kv.api import (
    EventType,
    KvEntry,
    KvUnavailable,
    Listing,
    WatchEvent,
)
from ha_sc.kv.memory import MemoryKv
from ha_sc.model import (
    ComputedReplicas,
    Kind,
    SpuSpec,
    Topic,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    TopicStatus,
    decode_object,
    encode_value,
)
from ha_sc.model.spu import Endpoint
from ha_sc.store import (
    CacheCorrupted,
    Dispatcher,
    DispatcherSettings,
    GlobalStore,
    LocalStore,
    start_dispatchers,
)
from ha_sc.store.progress import PROGRESS_KEY, progress_value
from ha_sc.tasks import Supervisor
from tests.waiting import eventually  # not wait_for_revision: it makes the dispatcher re-list

pytestmark = pytest.mark.timeout(15)

TOPICS = Kind.TOPIC
FAST_RETRY = DispatcherSettings(resync_interval=None, retry_initial=0.01, retry_max=0.02)


def topic_value(partitions: int = 1, resolution: TopicResolution = TopicResolution.INIT) -> bytes:
    spec = TopicSpec(
        replicas=TopicReplicas(
            computed=ComputedReplicas(partitions=partitions, replication_factor=1)
        )
    )
    return encode_value(spec, TopicStatus(resolution=resolution))


BAD_VALUE = b'{"spec": {"replicas": {"computed": {"partitions": 0, "replication_factor": 1}}}}'


def spu_value(spu_id: int) -> bytes:
    endpoint = Endpoint(host="localhost", port=9005)
    return encode_value(SpuSpec(id=spu_id, public_endpoint=endpoint, private_endpoint=endpoint))


def topic_store() -> LocalStore[TopicSpec, TopicStatus]:
    return LocalStore[TopicSpec, TopicStatus](TOPICS)


async def kv_topics(kv: MemoryKv) -> dict[str, Topic]:
    listing = await kv.list(TOPICS)
    return {
        e.key: decode_object(
            TOPICS, e.key, e.value, revision=e.revision, create_revision=e.create_revision
        )
        for e in listing.entries
    }


@pytest.fixture
async def supervisor() -> AsyncIterator[Supervisor]:
    supervisor = Supervisor()
    yield supervisor
    await supervisor.stop()
    assert supervisor.failure is None


async def started(
    supervisor: Supervisor,
    kv: object,
    store: LocalStore[TopicSpec, TopicStatus],
    settings: DispatcherSettings = FAST_RETRY,
) -> Dispatcher[TopicSpec, TopicStatus]:
    dispatcher = Dispatcher(kv, store, settings=settings)  # type: ignore[arg-type]
    task = dispatcher.start(supervisor)
    assert task.get_name() == "dispatcher-topics"
    async with asyncio.timeout(3):
        await dispatcher.ready.wait()
    return dispatcher


# list, then watch


async def test_the_first_listing_then_the_watch_fill_the_store(
    supervisor: Supervisor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ha_sc.store")
    kv = MemoryKv()
    await kv.create(TOPICS, "a", topic_value())
    await kv.create(TOPICS, "b", topic_value())
    store = topic_store()

    dispatcher = await started(supervisor, kv, store)

    assert sorted(store.snapshot()) == ["a", "b"]
    assert dispatcher.revision == 2
    assert "dispatcher topics: full sync at revision 2, 2 objects" in caplog.text

    await kv.create(TOPICS, "c", topic_value(partitions=3))
    revision = await kv.update(
        TOPICS, "a", topic_value(resolution=TopicResolution.PROVISIONED), expected_revision=1
    )
    await eventually(lambda: store.revision == revision)

    assert dict(store.snapshot()) == await kv_topics(kv)
    assert store.epoch == 3  # one full sync, then one change per event


async def test_a_delete_reaches_the_store(supervisor: Supervisor) -> None:
    kv = MemoryKv()
    await kv.create(TOPICS, "a", topic_value())
    await kv.create(TOPICS, "b", topic_value())
    store = topic_store()
    await started(supervisor, kv, store)
    listener = store.listen()
    listener.take_changes()

    revision = await kv.delete(TOPICS, "a")
    await eventually(lambda: store.revision == revision)

    assert sorted(store.snapshot()) == ["b"]
    changes = listener.take_changes()
    assert changes.deletes == ("a",)
    assert changes.updates == ()


# values that fail validation


async def test_an_invalid_value_is_logged_and_left_out_while_the_rest_flows(
    supervisor: Supervisor, caplog: pytest.LogCaptureFixture
) -> None:
    kv = MemoryKv()
    await kv.create(TOPICS, "good", topic_value())
    bad_revision = await kv.create(TOPICS, "bad", BAD_VALUE)
    store = topic_store()

    dispatcher = await started(supervisor, kv, store)

    assert sorted(store.snapshot()) == ["good"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "dispatcher topics: invalid value for key bad" in message
    assert f"revision {bad_revision}" in message
    assert "partitions" in message  # the reason names the field
    assert set(dispatcher.rejected) == {"bad"}

    revision = await kv.create(TOPICS, "later", topic_value())
    await eventually(lambda: store.revision == revision)
    assert sorted(store.snapshot()) == ["good", "later"]

    revision = await kv.update(TOPICS, "bad", topic_value(), expected_revision=bad_revision)
    await eventually(lambda: store.revision == revision)
    assert sorted(store.snapshot()) == ["bad", "good", "later"]
    assert dict(dispatcher.rejected) == {}
    assert not supervisor.failed.is_set()
    assert set(supervisor.tasks) == {"dispatcher-topics"}


async def test_an_invalid_update_keeps_the_earlier_version(
    supervisor: Supervisor, caplog: pytest.LogCaptureFixture
) -> None:
    kv = MemoryKv()
    first = await kv.create(TOPICS, "a", topic_value(partitions=2))
    store = topic_store()
    dispatcher = await started(supervisor, kv, store, DispatcherSettings(resync_interval=0.05))
    earlier = store.get("a")

    revision = await kv.update(TOPICS, "a", b"not json", expected_revision=first)
    await eventually(lambda: store.revision == revision)

    assert store.get("a") == earlier
    assert "invalid value for key a" in caplog.text
    assert "keeping the earlier version" in caplog.text
    assert dispatcher.rejected["a"].revision == revision

    # a periodic re-list keeps it too, and does not warn again about the same value
    caplog.clear()
    caplog.set_level(logging.INFO, logger="ha_sc.store")
    await eventually(lambda: "resync (periodic)" in caplog.text)
    await eventually(lambda: "full sync" in caplog.text)
    assert store.get("a") == earlier
    assert "invalid value" not in caplog.text

    revision = await kv.delete(TOPICS, "a")
    await eventually(lambda: store.revision >= revision)
    assert len(store) == 0
    assert dict(dispatcher.rejected) == {}


# re-listing


async def test_compaction_triggers_a_relist_and_the_store_ends_equal_to_the_kv(
    supervisor: Supervisor, caplog: pytest.LogCaptureFixture
) -> None:
    kv = MemoryKv(history_size=3)
    for key in ("a", "b", "c"):
        await kv.create(TOPICS, key, topic_value())
    store = topic_store()
    await started(supervisor, kv, store)

    # the memory KV never yields inside a write, so the watch wakes to compacted history
    await kv.delete(TOPICS, "a")
    await kv.update(TOPICS, "b", topic_value(partitions=4), expected_revision=2)
    for index in range(6):
        await kv.create(TOPICS, f"n{index}", topic_value())
    await kv.delete(TOPICS, "n0")
    await eventually(lambda: store.revision == kv.revision)

    assert "compacted" in caplog.text
    assert "re-listing" in caplog.text
    assert dict(store.snapshot()) == await kv_topics(kv)
    assert "a" in store.tombstones()
    assert "n0" not in store  # created and deleted while the watch was behind


class DeafWatchKv(MemoryKv):
    """A memory KV whose watches stay silent, as a watch that lost its connection might."""

    def watch(self, kind: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        return _silence()


async def _silence() -> AsyncIterator[WatchEvent]:
    await asyncio.Event().wait()
    yield  # type: ignore[misc]  # pragma: no cover


async def test_the_periodic_resync_catches_up_without_the_watch(
    supervisor: Supervisor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ha_sc.store")
    kv = DeafWatchKv()
    await kv.create(TOPICS, "a", topic_value())
    store = topic_store()
    await started(supervisor, kv, store, DispatcherSettings(resync_interval=0.05))

    await kv.create(TOPICS, "b", topic_value())
    await kv.delete(TOPICS, "a")
    await eventually(lambda: store.revision == kv.revision)

    assert sorted(store.snapshot()) == ["b"]
    assert "resync (periodic)" in caplog.text


async def test_waiting_for_a_revision_makes_the_dispatcher_catch_up(
    supervisor: Supervisor,
) -> None:
    kv = MemoryKv()
    await kv.create(TOPICS, "a", topic_value())
    store = topic_store()
    await started(supervisor, kv, store)  # no periodic resync

    # changes of another kind move the KV revision; the topics watch has nothing to say
    for spu_id in (5001, 5002, 5003):
        await kv.create(Kind.SPU, str(spu_id), spu_value(spu_id))
    won_at = kv.revision
    assert store.revision < won_at

    async with asyncio.timeout(3):
        await store.wait_for_revision(won_at)

    assert store.revision >= won_at
    assert store.epoch == 1  # the re-list found nothing new for readers


async def test_a_progress_mark_moves_the_revision_without_a_relist_or_an_object(
    supervisor: Supervisor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ha_sc.store")
    kv = MemoryKv()
    await kv.create(TOPICS, "a", topic_value())
    await kv.create(TOPICS, PROGRESS_KEY, progress_value(3, "sc-0"))  # listed: left out
    store = topic_store()
    await started(supervisor, kv, store)
    assert sorted(store.snapshot()) == ["a"]
    for spu_id in (5001, 5002):
        await kv.create(Kind.SPU, str(spu_id), spu_value(spu_id))
    entry = await kv.get(TOPICS, PROGRESS_KEY)
    assert entry is not None

    mark = await kv.update(
        TOPICS, PROGRESS_KEY, progress_value(4, "sc-1"), expected_revision=entry.revision
    )
    async with asyncio.timeout(3):
        await store.wait_for_revision(mark, relist=False)

    assert sorted(store.snapshot()) == ["a"]
    assert store.epoch == 1  # readers saw no change
    assert caplog.text.count("full sync at revision") == 1  # no re-list was needed
    assert "invalid value" not in caplog.text


async def test_a_reader_waiting_on_a_deaf_watch_gets_a_relist(supervisor: Supervisor) -> None:
    kv = DeafWatchKv()
    store = topic_store()
    await started(supervisor, kv, store)

    revision = await kv.create(TOPICS, "a", topic_value())
    async with asyncio.timeout(3):
        await store.wait_for_revision(revision)

    assert sorted(store.snapshot()) == ["a"]


class FlakyListKv(MemoryKv):
    """A memory KV whose first listings fail as if the store had no leader."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def list(self, kind: str) -> Listing:
        if self.failures > 0:
            self.failures -= 1
            raise KvUnavailable("no leader")
        return await super().list(kind)


async def test_listing_retries_while_the_kv_is_unavailable(
    supervisor: Supervisor, caplog: pytest.LogCaptureFixture
) -> None:
    kv = FlakyListKv(failures=3)
    await kv.create(TOPICS, "a", topic_value())
    store = topic_store()

    await started(supervisor, kv, store)

    assert sorted(store.snapshot()) == ["a"]
    retries = [r.getMessage() for r in caplog.records if "KV unavailable" in r.getMessage()]
    assert len(retries) == 3
    assert "dispatcher topics: KV unavailable while listing (attempt 3): no leader" in retries[2]


async def test_one_dispatcher_per_kind_fills_the_global_store(supervisor: Supervisor) -> None:
    kv = MemoryKv()
    await kv.create(Kind.SPU, "5001", spu_value(5001))
    cache = GlobalStore()

    dispatchers = start_dispatchers(cache, kv, supervisor, settings=FAST_RETRY)
    await kv.create(TOPICS, "a", topic_value())

    assert set(supervisor.tasks) == {f"dispatcher-{kind}" for kind in Kind}
    async with asyncio.timeout(3):
        await cache.wait_for_revision(kv.revision)
    assert all(d.ready.is_set() for d in dispatchers.values())
    assert list(cache.spus.snapshot()) == ["5001"]
    assert list(cache.topics.snapshot()) == ["a"]
    assert cache.revision == kv.revision


# fatal: out-of-order events


class ScriptedKv:
    """A KV that lists one fixed listing and then replays a fixed script of watch events."""

    def __init__(self, listing: Listing, events: Iterable[WatchEvent]) -> None:
        self._listing = listing
        self._events = tuple(events)

    async def list(self, kind: str) -> Listing:
        return self._listing

    async def get(self, kind: str, key: str) -> KvEntry | None:
        raise NotImplementedError

    async def create(self, kind: str, key: str, value: bytes, *, guard: Guard | None = None) -> int:
        raise NotImplementedError

    async def update(
        self,
        kind: str,
        key: str,
        value: bytes,
        *,
        expected_revision: int,
        guard: Guard | None = None,
    ) -> int:
        raise NotImplementedError

    async def delete(
        self,
        kind: str,
        key: str,
        *,
        expected_revision: int | None = None,
        guard: Guard | None = None,
    ) -> int:
        raise NotImplementedError

    def watch(self, kind: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        return self._replay()

    async def close(self) -> None:
        return None

    async def _replay(self) -> AsyncIterator[WatchEvent]:
        for event in self._events:
            yield event
        await asyncio.Event().wait()


def put(key: str, revision: int, kind: str = TOPICS) -> WatchEvent:
    return WatchEvent(EventType.PUT, kind, key, topic_value(), revision, revision)


LISTING = Listing((KvEntry(TOPICS, "a", topic_value(), 5, 5),), revision=5)


async def test_an_event_older_than_the_cache_is_fatal() -> None:
    kv = ScriptedKv(LISTING, [put("b", 7), put("c", 6)])
    store = topic_store()
    dispatcher = Dispatcher(kv, store, settings=FAST_RETRY)

    with pytest.raises(CacheCorrupted, match="revision 6 is older than the cache"):
        async with asyncio.timeout(3):
            await dispatcher.run()

    assert sorted(store.snapshot()) == ["a", "b"]
    assert store.revision == 7


async def test_an_event_replaying_the_listing_is_fatal() -> None:
    kv = ScriptedKv(LISTING, [put("a", 4)])
    dispatcher = Dispatcher(kv, topic_store(), settings=FAST_RETRY)

    with pytest.raises(CacheCorrupted, match="replayed or skipped history"):
        async with asyncio.timeout(3):
            await dispatcher.run()


async def test_an_event_of_another_kind_is_fatal() -> None:
    kv = ScriptedKv(LISTING, [put("5001", 6, kind=Kind.SPU)])
    dispatcher = Dispatcher(kv, topic_store(), settings=FAST_RETRY)

    with pytest.raises(CacheCorrupted, match="spus/5001"):
        async with asyncio.timeout(3):
            await dispatcher.run()


async def test_a_corrupted_cache_stops_the_replica_through_the_supervisor(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fatal: list[str] = []
    supervisor = Supervisor(on_fatal=lambda failure: fatal.append(failure.task_name))
    dispatcher = Dispatcher(ScriptedKv(LISTING, [put("b", 3)]), topic_store())

    dispatcher.start(supervisor)
    async with asyncio.timeout(3):
        failure = await supervisor.wait_failed()
    await supervisor.stop()

    assert failure.task_name == "dispatcher-topics"
    assert isinstance(failure.error, CacheCorrupted)
    assert fatal == ["dispatcher-topics"]
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "task dispatcher-topics failed"
    assert record.exc_info is not None
    assert "CacheCorrupted" in caplog.text  # the traceback is in the log


# the supervisor


async def _fail() -> None:
    await asyncio.sleep(0)
    raise RuntimeError("boom")


async def _finish() -> int:
    await asyncio.sleep(0)
    return 1


async def _forever() -> None:
    await asyncio.Event().wait()


async def test_a_critical_task_that_fails_is_fatal(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor()
    supervisor.start("worker", _fail())

    async with asyncio.timeout(1):
        failure = await supervisor.wait_failed()

    assert str(failure) == "task worker failed: RuntimeError('boom')"
    assert "task worker failed" in caplog.text
    assert "RuntimeError: boom" in caplog.text  # traceback
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert [r.getMessage() for r in critical] == [
        "task worker failed: RuntimeError('boom'); stopping the replica"
    ]
    await supervisor.stop()


async def test_a_critical_task_that_returns_is_fatal() -> None:
    supervisor = Supervisor()
    supervisor.start("worker", _finish())

    async with asyncio.timeout(1):
        failure = await supervisor.wait_failed()

    assert failure.error is None
    assert "must run until stopped" in str(failure)
    await supervisor.stop()


async def test_a_non_critical_failure_is_logged_but_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = Supervisor()
    failing = supervisor.start("probe", _fail(), critical=False)
    done = supervisor.start("once", _finish(), critical=False)

    await asyncio.wait([failing, done])
    await asyncio.sleep(0)

    assert "task probe failed" in caplog.text
    assert not supervisor.failed.is_set()
    assert dict(supervisor.tasks) == {}
    await supervisor.stop()


async def test_stop_cancels_tasks_without_a_failure() -> None:
    supervisor = Supervisor()
    task = supervisor.start("worker", _forever())
    with pytest.raises(ValueError, match="already running"):
        supervisor.start("worker", _forever())

    await supervisor.stop()

    assert task.cancelled()
    assert not supervisor.failed.is_set()
    with pytest.raises(RuntimeError, match="stopping"):
        supervisor.start("late", _forever())
