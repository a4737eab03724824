"""A keyed create stores its request mark and the object in one batch write, and a
repeat of it is told apart from a create by another request, on every KV backend (etcd
gives both writes of the batch one revision; Raft and memory one each)."""

from __future__ import annotations

import json
import time

import pytest

from ha_sc.api.request_marks import KIND, MARK_AGE, create_marked, created_by, mark_key
from ha_sc.kv.api import KeyExists, StaleGuard
from tests.kv_harness import KvHarness

TOPIC = b'{"spec": {"replicas": {"computed": {"partitions": 1, "replication_factor": 1}}}}'


async def test_a_keyed_create_is_found_again_by_its_key(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    guard = await kv_harness.current_guard("sc")
    before = (await kv.list("topics")).revision
    revision = await create_marked(kv, guard, "key-1", "topics", "orders", TOPIC)
    entry = await kv.get("topics", "orders")
    stored_mark = await kv.get(KIND, mark_key("key-1"))
    assert entry is not None and entry.create_revision == revision
    assert stored_mark is not None
    assert before < stored_mark.create_revision <= revision  # one batch, the mark first
    again = await created_by(kv, "key-1", "topics", "orders")
    assert again is not None and again.create_revision == revision
    assert await created_by(kv, "key-2", "topics", "orders") is None
    assert await created_by(kv, "key-1", "topics", "refunds") is None


async def test_a_create_refused_leaves_the_object_not_claimed_by_the_key(
    kv_harness: KvHarness,
) -> None:
    kv = kv_harness.kv
    guard = await kv_harness.current_guard("sc")
    await kv.create("topics", "orders", TOPIC, guard=guard)
    with pytest.raises(KeyExists):
        await create_marked(kv, guard, "late", "topics", "orders", TOPIC)
    assert await created_by(kv, "late", "topics", "orders") is None


async def test_a_key_used_before_creates_then_names_the_new_object_in_its_mark(
    kv_harness: KvHarness,
) -> None:
    kv = kv_harness.kv
    guard = await kv_harness.current_guard("sc")
    await create_marked(kv, guard, "reused", "topics", "first", TOPIC)
    revision = await create_marked(kv, guard, "reused", "topics", "second", TOPIC)
    found = await created_by(kv, "reused", "topics", "second")
    assert found is not None and found.create_revision == revision
    assert await created_by(kv, "reused", "topics", "first") is None


async def test_a_stale_guard_stores_neither_mark_nor_object(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    old = await kv_harness.current_guard("sc")
    await kv_harness.supersede(old)
    with pytest.raises(StaleGuard):
        await create_marked(kv, old, "stale", "topics", "orders", TOPIC)
    assert await kv.get("topics", "orders") is None
    assert await kv.get(KIND, mark_key("stale")) is None


async def test_old_marks_are_pruned_only_by_a_create_asked_to(kv_harness: KvHarness) -> None:
    kv = kv_harness.kv
    guard = await kv_harness.current_guard("sc")
    aged = json.dumps({"kind": "topics", "name": "old", "at": time.time() - MARK_AGE - 1})
    await kv.create(KIND, mark_key("aged"), aged.encode(), guard=guard)
    await create_marked(kv, guard, "k1", "topics", "first", TOPIC, prune=False)
    assert await kv.get(KIND, mark_key("aged")) is not None
    await create_marked(kv, guard, "k2", "topics", "second", TOPIC)
    assert await kv.get(KIND, mark_key("aged")) is None
    assert await kv.get(KIND, mark_key("k1")) is not None
