"""The per-kind store: epochs, changes since an epoch, tombstones, snapshots, waiting."""

from __future__ import annotations

import asyncio
import functools
from types import MappingProxyType

import pytest
from pydantic import ValidationError

from ha_sc.model import (
    ComputedReplicas,
    Kind,
    ObjectMeta,
    Topic,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    TopicStatus,
)
from ha_sc.store import (
    CacheCorrupted,
    ChangeFocus,
    GlobalStore,
    LocalStore,
    partition_topic,
)

pytestmark = pytest.mark.timeout(10)


def topic(
    key: str,
    *,
    partitions: int = 1,
    resolution: TopicResolution = TopicResolution.INIT,
    revision: int = 1,
) -> Topic:
    return Topic(
        meta=ObjectMeta(key=key, revision=revision, create_revision=1),
        spec=TopicSpec(
            replicas=TopicReplicas(
                computed=ComputedReplicas(partitions=partitions, replication_factor=1)
            )
        ),
        status=TopicStatus(resolution=resolution),
    )


def topic_store(*, max_tombstones: int = 100) -> LocalStore[TopicSpec, TopicStatus]:
    return LocalStore[TopicSpec, TopicStatus](Kind.TOPIC, max_tombstones=max_tombstones)


def keys(objects: tuple[Topic, ...]) -> list[str]:
    return sorted(obj.key for obj in objects)


# changes since an epoch


def test_puts_advance_the_epoch_and_show_as_changes() -> None:
    store = topic_store()
    assert store.epoch == 0

    assert store.apply_put(topic("a", revision=1))
    assert store.apply_put(topic("b", revision=2))

    assert store.epoch == 2
    assert store.revision == 2
    changes = store.changes_since(0)
    assert not changes.is_full_sync
    assert keys(changes.updates) == ["a", "b"]
    assert changes.deletes == ()
    assert changes.epoch == 2
    assert keys(store.changes_since(1).updates) == ["b"]
    assert store.changes_since(2).is_empty


def test_an_identical_put_changes_nothing_but_the_revision() -> None:
    store = topic_store()
    store.apply_put(topic("a", revision=1))

    assert not store.apply_put(topic("a", revision=1))
    store.advance_revision(5)

    assert store.epoch == 1
    assert store.revision == 5


def test_spec_and_status_epochs_move_separately() -> None:
    store = topic_store()
    store.apply_put(topic("a", revision=1))  # epoch 1

    store.apply_put(topic("a", resolution=TopicResolution.PROVISIONED, revision=2))  # epoch 2
    entry = store.entry("a")
    assert entry is not None
    assert (entry.spec_epoch, entry.status_epoch, entry.epoch) == (1, 2, 2)
    assert store.spec_changes_since(1).is_empty
    assert keys(store.status_changes_since(1).updates) == ["a"]
    assert keys(store.changes_since(1).updates) == ["a"]

    store.apply_put(
        topic("a", partitions=3, resolution=TopicResolution.PROVISIONED, revision=3)
    )  # epoch 3
    entry = store.entry("a")
    assert entry is not None
    assert (entry.spec_epoch, entry.status_epoch, entry.epoch) == (3, 2, 3)
    assert keys(store.spec_changes_since(2).updates) == ["a"]
    assert store.status_changes_since(2).is_empty
    assert store.last_change(ChangeFocus.SPEC) == 3
    assert store.last_change(ChangeFocus.STATUS) == 2


def test_spec_changes_since_are_told_in_the_order_of_the_spec_changes() -> None:
    """Status writes after a spec change (a partition's offsets, say) neither hide it nor
    show as spec changes: the spec changes since an epoch come in the order they were
    made, whatever was written since."""
    store = topic_store()
    for n, key in enumerate(["a", "b", "c", "d"], 1):
        store.apply_put(topic(key, revision=n))  # epochs 1-4
    since = store.epoch
    store.apply_put(topic("b", partitions=2, revision=5))  # spec
    store.apply_put(topic("a", partitions=2, revision=6))  # spec
    for n, key in enumerate(["a", "c", "b", "d"], 7):  # status only, every key
        old = store.get(key)
        assert old is not None
        provisioned = TopicStatus(resolution=TopicResolution.PROVISIONED)
        store.apply_put(
            old.model_copy(update={"status": provisioned, "meta": ObjectMeta(key=key, revision=n)})
        )
    assert [t.key for t in store.spec_changes_since(since).updates] == ["b", "a"]
    assert [t.key for t in store.spec_changes_since(since + 1).updates] == ["a"]
    assert store.spec_changes_since(since + 2).is_empty
    assert [t.key for t in store.changes_since(since).updates] == ["a", "c", "b", "d"]
    store.apply_delete("b", 11)
    assert [t.key for t in store.spec_changes_since(since).updates] == ["a"]
    assert store.spec_changes_since(since).deletes == ("b",)


def test_a_new_revision_alone_is_a_change_of_neither_spec_nor_status() -> None:
    store = topic_store()
    store.apply_put(topic("a", revision=1))

    assert store.apply_put(topic("a", revision=4))

    assert store.epoch == 2
    assert [t.meta.revision for t in store.changes_since(1).updates] == [4]
    assert store.spec_changes_since(1).is_empty
    assert store.status_changes_since(1).is_empty


# deletes and tombstones


def test_a_delete_leaves_a_tombstone_readers_see_once() -> None:
    store = topic_store()
    store.apply_put(topic("a", revision=1))
    store.apply_put(topic("b", revision=2))

    assert store.apply_delete("a", revision=3)

    assert "a" not in store
    assert store.tombstones() == {"a": 3}
    changes = store.changes_since(2)
    assert changes.deletes == ("a",)
    assert changes.updates == ()
    assert store.spec_changes_since(2).deletes == ("a",)
    assert store.status_changes_since(2).deletes == ("a",)
    assert store.changes_since(3).is_empty


def test_deleting_an_unknown_key_changes_nothing() -> None:
    store = topic_store()
    store.apply_put(topic("a", revision=1))

    assert not store.apply_delete("ghost", revision=2)

    assert store.epoch == 1
    assert store.revision == 2
    assert store.tombstones() == {}


def test_a_recreated_key_drops_its_tombstone() -> None:
    store = topic_store()
    store.apply_put(topic("a", revision=1))
    store.apply_delete("a", revision=2)

    store.apply_put(topic("a", partitions=2, revision=3))

    assert store.tombstones() == {}
    changes = store.changes_since(1)
    assert changes.deletes == ()
    assert [t.spec.partition_count() for t in changes.updates] == [2]


def test_a_reader_behind_the_forgotten_tombstones_gets_a_full_sync() -> None:
    store = topic_store(max_tombstones=2)
    for revision, key in enumerate("abcd", start=1):
        store.apply_put(topic(key, revision=revision))  # epochs 1..4
    store.apply_delete("a", revision=5)  # epoch 5
    store.apply_delete("b", revision=6)  # epoch 6
    store.apply_delete("c", revision=7)  # epoch 7: a's tombstone is dropped

    assert dict(store.tombstones()) == {"b": 6, "c": 7}
    assert store.fence == 5

    too_old = store.changes_since(4)
    assert too_old.is_full_sync
    assert keys(too_old.updates) == ["d"]
    assert too_old.deletes == ()
    assert too_old.epoch == 7

    recent = store.changes_since(5)
    assert not recent.is_full_sync
    assert recent.deletes == ("b", "c")


def test_an_epoch_from_the_future_gets_a_full_sync() -> None:
    store = topic_store()
    store.apply_put(topic("a", revision=1))

    assert store.changes_since(99).is_full_sync


# full sync from a listing


def test_sync_all_keeps_unchanged_epochs_and_tombstones_vanished_keys() -> None:
    store = topic_store()
    store.sync_all([topic("same"), topic("spec"), topic("status"), topic("gone")], revision=4)
    assert store.epoch == 1

    summary = store.sync_all(
        [
            topic("same"),
            topic("spec", partitions=5),
            topic("status", resolution=TopicResolution.PENDING),
            topic("new", revision=8),
        ],
        revision=9,
    )

    assert (summary.added, summary.changed, summary.deleted, summary.unchanged) == (1, 2, 1, 1)
    assert summary.objects == 4
    assert store.epoch == 2
    assert store.revision == 9
    epochs = {}
    for key in ("same", "spec", "status", "new"):
        entry = store.entry(key)
        assert entry is not None
        epochs[key] = (entry.spec_epoch, entry.status_epoch)
    assert epochs == {"same": (1, 1), "spec": (2, 1), "status": (1, 2), "new": (2, 2)}
    assert keys(store.changes_since(1).updates) == ["new", "spec", "status"]
    assert keys(store.spec_changes_since(1).updates) == ["new", "spec"]
    assert keys(store.status_changes_since(1).updates) == ["new", "status"]
    assert store.changes_since(1).deletes == ("gone",)


def test_a_sync_from_what_a_listing_changed_leaves_the_rest_as_it_was() -> None:
    store = topic_store()
    store.sync_all([topic("same"), topic("spec"), topic("gone")], revision=4)

    summary = store.sync_listing(
        [topic("spec", partitions=5), topic("new", revision=8)],
        {"same", "spec", "new"},
        revision=9,
    )

    assert (summary.added, summary.changed, summary.deleted, summary.unchanged) == (1, 1, 1, 1)
    assert store.get("same") == topic("same")
    assert store.get("gone") is None
    assert keys(store.changes_since(1).updates) == ["new", "spec"]
    assert store.changes_since(1).deletes == ("gone",)


def test_a_sync_that_changes_nothing_keeps_the_epoch() -> None:
    store = topic_store()
    store.sync_all([topic("a"), topic("b")], revision=2)

    summary = store.sync_all([topic("a"), topic("b")], revision=7)

    assert summary.unchanged == 2
    assert store.epoch == 1
    assert store.revision == 7


def test_a_listing_with_a_key_twice_is_refused() -> None:
    store = topic_store()

    with pytest.raises(CacheCorrupted, match="twice"):
        store.sync_all([topic("a"), topic("a")], revision=1)


@pytest.mark.parametrize("write", ["put", "delete", "sync", "advance"])
def test_a_change_older_than_the_store_is_refused(write: str) -> None:
    store = topic_store()
    store.apply_put(topic("a", revision=10))

    with pytest.raises(CacheCorrupted, match="older than the cache"):
        if write == "put":
            store.apply_put(topic("b", revision=9))
        elif write == "delete":
            store.apply_delete("a", revision=9)
        elif write == "sync":
            store.sync_all([], revision=9)
        else:
            store.advance_revision(9)
    assert store.get("a") == topic("a", revision=10)


# snapshots


def test_snapshots_are_read_only_and_do_not_follow_later_changes() -> None:
    store = topic_store()
    store.apply_put(topic("a", revision=1))

    snapshot = store.snapshot()
    objects = store.objects()
    changes = store.full_sync()
    assert isinstance(snapshot, MappingProxyType)
    with pytest.raises(TypeError):
        snapshot["b"] = topic("b")  # type: ignore[index]
    with pytest.raises(ValidationError):
        snapshot["a"].spec = topic("x", partitions=9).spec

    store.apply_put(topic("b", revision=2))
    store.apply_delete("a", revision=3)

    assert list(snapshot) == ["a"]
    assert keys(objects) == ["a"]
    assert keys(changes.updates) == ["a"]
    assert list(store.snapshot()) == ["b"]


def test_the_snapshot_is_shared_until_something_changes() -> None:
    store = topic_store()
    store.apply_put(topic("a", revision=1))

    first = store.snapshot()
    assert store.snapshot() is first
    store.apply_put(topic("a", revision=1))  # no change
    assert store.snapshot() is first
    store.apply_put(topic("a", revision=2))
    assert store.snapshot() is not first


# listeners and waiting


async def test_a_listener_starts_with_a_full_sync_then_takes_deltas() -> None:
    store = topic_store()
    store.apply_put(topic("a", revision=1))
    listener = store.listen()

    assert listener.has_change()
    first = listener.take_changes()
    assert first.is_full_sync
    assert keys(first.updates) == ["a"]
    assert not listener.has_change()
    assert listener.take_changes().is_empty

    loop = asyncio.get_running_loop()
    loop.call_soon(store.apply_put, topic("b", revision=2))
    async with asyncio.timeout(1):
        epoch = await listener.wait_for_change()
    assert epoch == 2
    second = listener.take_changes()
    assert not second.is_full_sync
    assert keys(second.updates) == ["b"]
    assert listener.synced_epoch == 2


async def test_wait_for_change_returns_at_once_for_an_older_epoch() -> None:
    store = topic_store()
    store.apply_put(topic("a", revision=1))

    async with asyncio.timeout(1):
        assert await store.listen().wait_for_change(after_epoch=0) == 1


async def test_a_spec_listener_sleeps_through_status_changes() -> None:
    store = topic_store()
    store.apply_put(topic("a", revision=1))
    listener = store.listen(focus=ChangeFocus.SPEC)
    listener.take_changes()

    store.apply_put(topic("a", resolution=TopicResolution.PROVISIONED, revision=2))
    assert not listener.has_change()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await listener.wait_for_change()

    store.apply_put(topic("a", partitions=2, resolution=TopicResolution.PROVISIONED, revision=3))
    async with asyncio.timeout(1):
        await listener.wait_for_change()
    changes = listener.take_changes()
    assert [t.spec.partition_count() for t in changes.updates] == [2]


async def test_wait_for_revision_asks_the_dispatcher_and_waits() -> None:
    store = topic_store()
    wanted: list[int] = []
    store.on_revision_wanted(wanted.append)

    loop = asyncio.get_running_loop()
    loop.call_soon(store.advance_revision, 3)
    loop.call_soon(store.apply_put, topic("a", revision=7))
    async with asyncio.timeout(1):
        await store.listen().wait_for_revision(5)

    assert store.revision == 7
    assert wanted == [5]
    async with asyncio.timeout(1):
        await store.wait_for_revision(7)  # already there: no request
    assert wanted == [5]


# the global store


def test_the_global_store_holds_one_store_per_kind() -> None:
    cache = GlobalStore()

    assert cache.spus.kind is Kind.SPU
    assert cache.spu_groups.kind is Kind.SPU_GROUP
    assert cache.topics.kind is Kind.TOPIC
    assert cache.partitions.kind is Kind.PARTITION
    assert set(cache.kinds) == set(Kind)
    for kind in Kind:
        assert cache.view(kind) is cache.local_store(kind)
        assert cache.view(kind).kind is kind


async def test_the_global_store_waits_until_every_kind_reached_a_revision() -> None:
    cache = GlobalStore()
    wanted: dict[Kind, int] = {}
    for kind in Kind:
        cache.local_store(kind).on_revision_wanted(functools.partial(wanted.__setitem__, kind))
    loop = asyncio.get_running_loop()
    for kind in Kind:
        loop.call_soon(cache.local_store(kind).advance_revision, 4)

    async with asyncio.timeout(1):
        await cache.wait_for_revision(4)

    assert wanted == dict.fromkeys(Kind, 4)  # every kind was asked before any was awaited
    assert cache.revision == 4


# keys by group (a partition store's index by topic)


def test_a_grouped_store_lists_a_groups_keys_through_puts_deletes_and_syncs() -> None:
    store = LocalStore[TopicSpec, TopicStatus](Kind.TOPIC, group_of=partition_topic)
    store.apply_put(topic("orders-0", revision=1))
    store.apply_put(topic("orders-1", revision=2))
    store.apply_put(topic("order-0", revision=3))
    store.apply_put(topic("orders-1", revision=4, partitions=2))  # changed, not added again
    assert store.keys_in("orders") == ("orders-0", "orders-1")
    assert store.keys_in("order") == ("order-0",)

    store.apply_delete("orders-0", revision=5)
    assert store.keys_in("orders") == ("orders-1",)

    store.sync_all([topic("orders-1", revision=4), topic("logs-0", revision=6)], revision=6)
    assert store.keys_in("orders") == ("orders-1",)
    assert store.keys_in("order") == ()
    assert store.keys_in("logs") == ("logs-0",)


def test_the_cache_indexes_partitions_by_topic_and_other_kinds_not_at_all() -> None:
    cache = GlobalStore()
    assert cache.partitions.keys_in("orders") == ()
    cache.local_store(Kind.TOPIC).apply_put(topic("orders-0"))
    assert cache.topics.keys_in("orders") == ()
