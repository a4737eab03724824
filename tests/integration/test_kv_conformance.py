"""One behaviour for every KV backend: memory, Raft (3 real nodes) and etcd (a real server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from ha_sc.kv.api import (
    CreateOp,
    DeleteOp,
    EventType,
    KeyExists,
    KeyNotFound,
    KvStore,
    RevisionCompacted,
    RevisionConflict,
    StaleGuard,
    UpdateOp,
    WatchEvent,
)
from tests.kv_harness import KvHarness
from tests.waiting import eventually

TOPIC = b'{"spec": {"replicas": {"computed": {"partitions": 1, "replication_factor": 1}}}}'


def child_of(topic: str, n: int) -> bytes:
    return json.dumps({"spec": {"leader": n}, "owner": {"kind": "topics", "key": topic}}).encode()


async def caught_up(view: KvStore, revision: int, timeout: float = 10.0) -> None:
    """Wait until another replica's view has applied ``revision``."""

    async def applied() -> bool:
        return (await view.list("topics")).revision >= revision

    await eventually(applied, timeout=timeout, interval=0.01, what=f"a view at {revision}")


async def take(
    events: AsyncIterator[WatchEvent], count: int, timeout: float = 10.0
) -> list[WatchEvent]:
    out: list[WatchEvent] = []
    async with asyncio.timeout(timeout):
        while len(out) < count:
            out.append(await anext(events))
    return out


async def nothing_more(events: AsyncIterator[WatchEvent], wait: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(wait):
            extra = await anext(events)
            pytest.fail(f"unexpected event {extra}")


async def test_create_get_list(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    rev = await kv.create("topics", "orders", TOPIC)
    entry = await kv.get("topics", "orders")
    assert entry is not None
    assert (entry.kind, entry.key, entry.value) == ("topics", "orders", TOPIC)
    assert entry.revision == entry.create_revision == rev
    listing = await kv.list("topics")
    assert [e.key for e in listing.entries] == ["orders"]
    assert listing.revision >= rev
    assert await kv.get("topics", "missing") is None
    assert (await kv.list("spus")).entries == ()


async def test_create_if_absent_refuses_existing(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    await kv.create("topics", "orders", TOPIC)
    with pytest.raises(KeyExists, match="topics/orders already exists"):
        await kv.create("topics", "orders", b"{}")
    entry = await kv.get("topics", "orders")
    assert entry is not None and entry.value == TOPIC


async def test_update_with_expected_revision(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    created = await kv.create("topics", "orders", TOPIC)
    updated = await kv.update("topics", "orders", b'{"spec": 2}', expected_revision=created)
    assert updated > created
    with pytest.raises(RevisionConflict) as refused:
        await kv.update("topics", "orders", b'{"spec": 3}', expected_revision=created)
    assert refused.value.actual == updated
    entry = await kv.get("topics", "orders")
    assert entry is not None
    assert entry.value == b'{"spec": 2}'
    assert entry.create_revision == created and entry.revision == updated
    with pytest.raises(KeyNotFound):
        await kv.update("topics", "nope", b"{}", expected_revision=1)


async def test_delete_cascades_to_owned_objects(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    await kv.create("topics", "orders", TOPIC)
    await kv.create("topics", "other", TOPIC)
    for n in range(3):
        await kv.create("partitions", f"orders-{n}", child_of("orders", n))
    await kv.create("partitions", "other-0", child_of("other", 0))
    start = (await kv.list("topics")).revision + 1
    child_events = kv.watch("partitions", start)
    topic_events = kv.watch("topics", start)
    await kv.delete("topics", "orders")
    assert await kv.get("topics", "orders") is None
    remaining = await kv.list("partitions")
    assert [e.key for e in remaining.entries] == ["other-0"]
    deleted_children = await take(child_events, 3)
    deleted_topic = await take(topic_events, 1)
    assert {e.key for e in deleted_children} == {"orders-0", "orders-1", "orders-2"}
    assert all(e.type is EventType.DELETE for e in deleted_children + deleted_topic)
    assert max(e.revision for e in deleted_children) <= deleted_topic[0].revision
    with pytest.raises(KeyNotFound):
        await kv.delete("topics", "orders")
    await child_events.aclose()  # type: ignore[attr-defined]
    await topic_events.aclose()  # type: ignore[attr-defined]


async def test_delete_with_stale_revision_is_refused(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    created = await kv.create("topics", "orders", TOPIC)
    await kv.update("topics", "orders", TOPIC, expected_revision=created)
    with pytest.raises(RevisionConflict):
        await kv.delete("topics", "orders", expected_revision=created)
    assert await kv.get("topics", "orders") is not None


async def test_watch_delivers_changes_in_order_once(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    start = (await kv.list("topics")).revision + 1
    events = kv.watch("topics", start)
    r1 = await kv.create("topics", "a", TOPIC)
    await kv.create("spus", "5001", b"{}")  # another kind: not in this watch
    r2 = await kv.update("topics", "a", b'{"spec": 1}', expected_revision=r1)
    r3 = await kv.create("topics", "b", TOPIC)
    r4 = await kv.delete("topics", "a")
    seen = await take(events, 4)
    assert [(e.type, e.key, e.revision) for e in seen] == [
        (EventType.PUT, "a", r1),
        (EventType.PUT, "a", r2),
        (EventType.PUT, "b", r3),
        (EventType.DELETE, "a", r4),
    ]
    assert seen[1].value == b'{"spec": 1}' and seen[1].create_revision == r1
    await nothing_more(events)
    await events.aclose()  # type: ignore[attr-defined]


async def test_watch_resumed_after_disconnect_gets_exactly_the_missed_events(
    kv_harness: KvHarness,
) -> None:
    kv = kv_harness.kv
    start = (await kv.list("topics")).revision + 1
    first = kv.watch("topics", start)
    await kv.create("topics", "a", TOPIC)
    await kv.create("topics", "b", TOPIC)
    seen = await take(first, 2)
    await first.aclose()  # type: ignore[attr-defined]
    # disconnected: these happen while nobody watches
    await kv.create("topics", "c", TOPIC)
    await kv.delete("topics", "a")
    resumed = kv.watch("topics", seen[-1].revision + 1)
    missed = await take(resumed, 2)
    assert [(e.type, e.key) for e in missed] == [(EventType.PUT, "c"), (EventType.DELETE, "a")]
    await nothing_more(resumed)
    await resumed.aclose()  # type: ignore[attr-defined]


async def test_watch_from_old_revision_replays_history(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    r1 = await kv.create("topics", "a", TOPIC)
    await kv.create("topics", "b", TOPIC)
    events = kv.watch("topics", r1)
    assert [e.key for e in await take(events, 2)] == ["a", "b"]
    await events.aclose()  # type: ignore[attr-defined]


async def test_watch_of_compacted_revision_says_so(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    first = await kv.create("topics", "a", TOPIC)
    await kv.update("topics", "a", TOPIC, expected_revision=first)
    await kv_harness.force_compaction()  # type: ignore[attr-defined]
    events = kv.watch("topics", first)
    with pytest.raises(RevisionCompacted) as gone:
        async with asyncio.timeout(10):
            await anext(events)
    assert gone.value.requested == first
    assert gone.value.compacted >= first


async def test_another_replica_sees_the_same_changes(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    other = await kv_harness.open_another()
    start = (await other.list("topics")).revision + 1
    events = other.watch("topics", start)
    rev = await kv.create("topics", "a", TOPIC)
    (event,) = await take(events, 1)
    assert (event.key, event.revision, event.value) == ("a", rev, TOPIC)
    await caught_up(other, rev)
    entry = await other.get("topics", "a")
    assert entry is not None and entry.revision == rev
    await events.aclose()  # type: ignore[attr-defined]


async def test_concurrent_conflicting_updates_exactly_one_wins(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    writers = [kv] + [await kv_harness.open_another() for _ in range(2)]
    created = await kv.create("topics", "a", TOPIC)
    for writer in writers:
        await caught_up(writer, created)
    results = await asyncio.gather(
        *(
            writers[n % len(writers)].update(
                "topics", "a", f'{{"spec": {n}}}'.encode(), expected_revision=created
            )
            for n in range(10)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, int)]
    losers = [r for r in results if isinstance(r, RevisionConflict)]
    assert len(winners) == 1 and len(losers) == 9, results
    entry = await kv.get("topics", "a")
    assert entry is not None and entry.revision == winners[0]


async def test_concurrent_creates_exactly_one_wins(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    other = await kv_harness.open_another()
    results = await asyncio.gather(
        *(
            (kv if n % 2 else other).create("topics", "a", f'{{"n": {n}}}'.encode())
            for n in range(8)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, int) for r in results) == 1, results
    assert sum(isinstance(r, KeyExists) for r in results) == 7, results


async def test_write_with_stale_guard_is_refused(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    old = await kv_harness.current_guard("sc")
    created = await kv.create("topics", "a", TOPIC, guard=old)
    new = await kv_harness.supersede(old)
    assert new.epoch > old.epoch
    with pytest.raises(StaleGuard, match="no longer current"):
        await kv.update("topics", "a", b'{"spec": "stale"}', expected_revision=created, guard=old)
    with pytest.raises(StaleGuard):
        await kv.create("topics", "b", TOPIC, guard=old)
    with pytest.raises(StaleGuard):
        await kv.delete("topics", "a", guard=old)
    entry = await kv.get("topics", "a")
    assert entry is not None and entry.value == TOPIC and entry.revision == created
    assert await kv.get("topics", "b") is None
    await kv.update("topics", "a", b'{"spec": "new"}', expected_revision=created, guard=new)
    await kv.delete("topics", "a", guard=new)
    assert await kv.get("topics", "a") is None


# batch writes


async def test_batch_applies_every_op_in_order_with_its_events(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    a = await kv.create("topics", "a", TOPIC)
    await kv.create("topics", "b", TOPIC)
    start = (await kv.list("topics")).revision + 1
    events = kv.watch("topics", start)
    outcomes = await kv.write_batch(
        [
            CreateOp("topics", "c", TOPIC),
            UpdateOp("topics", "a", b'{"spec": "new"}', expected_revision=a),
            DeleteOp("topics", "b"),
        ]
    )
    assert all(isinstance(o, int) and o >= start for o in outcomes), outcomes
    changes = await take(events, 3)
    assert [(e.type, e.key) for e in changes] == [
        (EventType.PUT, "c"),
        (EventType.PUT, "a"),
        (EventType.DELETE, "b"),
    ]
    assert [e.revision for e in changes] == sorted(e.revision for e in changes)
    c, updated = await kv.get("topics", "c"), await kv.get("topics", "a")
    assert c is not None and c.revision == outcomes[0]
    assert updated is not None and updated.value == b'{"spec": "new"}'
    assert updated.revision == outcomes[1]
    assert await kv.get("topics", "b") is None
    assert await kv.write_batch([]) == []
    await events.aclose()  # type: ignore[attr-defined]


async def test_batch_op_refused_alone_the_others_applied(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    a = await kv.create("topics", "a", TOPIC)
    await kv.update("topics", "a", TOPIC, expected_revision=a)  # a is no longer at `a`
    await kv.create("topics", "taken", TOPIC)
    outcomes = await kv.write_batch(
        [
            CreateOp("topics", "x", TOPIC),
            UpdateOp("topics", "a", b'{"spec": "stale"}', expected_revision=a),
            CreateOp("topics", "taken", b'{"spec": "again"}'),
            UpdateOp("topics", "missing", TOPIC, expected_revision=a),
            DeleteOp("topics", "gone"),
            CreateOp("topics", "y", TOPIC),
        ]
    )
    assert isinstance(outcomes[0], int) and isinstance(outcomes[5], int), outcomes
    assert isinstance(outcomes[1], RevisionConflict) and outcomes[1].expected == a
    assert isinstance(outcomes[2], KeyExists)
    assert isinstance(outcomes[3], KeyNotFound)
    assert isinstance(outcomes[4], KeyNotFound)
    entry = await kv.get("topics", "a")
    assert entry is not None and entry.value == TOPIC
    taken = await kv.get("topics", "taken")
    assert taken is not None and taken.value == TOPIC
    assert {e.key for e in (await kv.list("topics")).entries} == {"a", "taken", "x", "y"}


async def test_batch_with_stale_guard_writes_nothing(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    old = await kv_harness.current_guard("sc")
    created = await kv.create("topics", "a", TOPIC, guard=old)
    new = await kv_harness.supersede(old)
    with pytest.raises(StaleGuard):
        await kv.write_batch(
            [
                CreateOp("topics", "b", TOPIC),
                UpdateOp("topics", "a", b'{"spec": "stale"}', expected_revision=created),
                DeleteOp("topics", "a"),
            ],
            guard=old,
        )
    entry = await kv.get("topics", "a")
    assert entry is not None and entry.revision == created
    assert await kv.get("topics", "b") is None
    (outcome,) = await kv.write_batch([CreateOp("topics", "b", TOPIC)], guard=new)
    assert isinstance(outcome, int)


async def test_batch_larger_than_a_transaction_with_a_conflict_late(
    kv_harness: KvHarness,
) -> None:
    """300 ops: more than etcd's default 128 per transaction; the conflict in the third
    transaction's range costs only its own op."""
    kv = kv_harness.kv
    await kv.create("partitions", "p-250", b"{}")
    other = await kv_harness.open_another()
    ops = [CreateOp("partitions", f"p-{n}", child_of("t", n)) for n in range(300)]
    outcomes = await kv.write_batch(ops)
    assert len(outcomes) == 300
    assert isinstance(outcomes[250], KeyExists)
    assert all(isinstance(o, int) for n, o in enumerate(outcomes) if n != 250), outcomes
    revisions = [o for o in outcomes if isinstance(o, int)]
    assert revisions == sorted(revisions)
    await caught_up(other, revisions[-1])
    listing = await other.list("partitions")
    assert len(listing.entries) == 300
    assert {e.key: e.value for e in listing.entries}["p-7"] == child_of("t", 7)
