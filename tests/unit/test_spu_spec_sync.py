"""What the SC sends one SPU: a full sync of the cached specs, then deltas of spec changes
only, over a real cache fed by dispatchers from the memory KV."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ha_sc.kv.memory import MemoryKv
from ha_sc.model import (
    ComputedReplicas,
    Endpoint,
    Kind,
    PartitionResolution,
    PartitionSpec,
    PartitionStatus,
    SpuSpec,
    TopicReplicas,
    TopicSpec,
    encode_value,
)
from ha_sc.protocol import ReplicaSpec, ReplicaStorage
from ha_sc.sc import spu_spec_sync
from ha_sc.sc.spu_spec_sync import ReplicaSpecs, SpecSync, keep_warm, spec_version
from ha_sc.store import GlobalStore, start_dispatchers
from ha_sc.tasks import Supervisor
from tests.waiting import eventually


class Store:
    def __init__(self) -> None:
        self.kv = MemoryKv()
        self.cache = GlobalStore()
        self.supervisor = Supervisor()

    async def settle(self, kind: Kind, revision: int) -> None:
        """Until the watch has brought ``kind`` to ``revision``."""
        await eventually(
            lambda: self.cache.view(kind).revision >= revision, what=f"{kind.value} at {revision}"
        )

    async def put(self, kind: Kind, key: str, value: bytes) -> None:
        entry = await self.kv.get(kind.value, key)
        if entry is None:
            revision = await self.kv.create(kind.value, key, value)
        else:
            revision = await self.kv.update(
                kind.value, key, value, expected_revision=entry.revision
            )
        await self.settle(kind, revision)

    async def put_spu(self, key: str, spu_id: int, port: int = 9005) -> None:
        spec = SpuSpec(
            id=spu_id,
            public_endpoint=Endpoint(host="127.0.0.1", port=port),
            private_endpoint=Endpoint(host="127.0.0.1", port=port + 1),
        )
        await self.put(Kind.SPU, key, encode_value(spec))

    async def put_partition(
        self, key: str, leader: int, replicas: list[int], status: PartitionStatus | None = None
    ) -> None:
        spec = PartitionSpec(leader=leader, replicas=replicas)
        await self.put(Kind.PARTITION, key, encode_value(spec, status))

    async def delete(self, kind: Kind, key: str) -> None:
        await self.settle(kind, await self.kv.delete(kind.value, key))


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    s = Store()
    start_dispatchers(s.cache, s.kv, s.supervisor)
    await s.put_spu("spu-5001", 5001)
    await s.put_spu("spu-5002", 5002)
    await s.put_partition("orders-0", 5001, [5001, 5002])
    yield s
    await s.supervisor.stop()


async def test_the_full_sync_has_every_spu_and_replica_spec(store: Store) -> None:
    full = await SpecSync(store.cache).full_sync(7)
    assert full.epoch == 7
    assert full.trace == {}
    assert sorted(s.id for s in full.spus) == [5001, 5002]
    created = store.cache.partitions.get("orders-0").meta.create_revision  # type: ignore[union-attr]
    assert full.replicas == [
        ReplicaSpec(partition="orders-0", leader=5001, replicas=[5001, 5002], generation=created)
    ]


async def test_a_partition_created_again_under_its_key_is_another_generation(
    store: Store,
) -> None:
    """Deleted and created again between two deltas: one change, with the new generation
    (the SPU tells the partitions apart by it, not by the key)."""
    sync = SpecSync(store.cache)
    (before,) = (await sync.full_sync(1)).replicas
    await store.delete(Kind.PARTITION, "orders-0")
    await store.put_partition("orders-0", 5001, [5001, 5002])
    delta = sync.delta(1)
    (after,) = delta.replicas_changed
    assert before.generation is not None and after.generation is not None
    assert after.generation > before.generation
    assert (after.partition, after.leader, after.replicas) == (
        before.partition,
        before.leader,
        before.replicas,
    )


async def test_deltas_carry_spec_changes_and_removals(store: Store) -> None:
    sync = SpecSync(store.cache)
    await sync.full_sync(1)
    assert not sync.has_change()
    assert sync.delta(1).is_empty

    await store.put_partition("orders-1", 5002, [5002])
    await store.put_partition("orders-0", 5002, [5001, 5002])
    await store.put_spu("spu-5002", 5002, port=7000)
    assert sync.has_change()
    delta = sync.delta(2)
    assert delta.epoch == 2
    assert sorted(r.partition for r in delta.replicas_changed) == ["orders-0", "orders-1"]
    assert [s.public_endpoint.port for s in delta.spus_changed] == [7000]
    assert delta.spus_removed == [] and delta.replicas_removed == []

    await store.delete(Kind.PARTITION, "orders-1")
    await store.delete(Kind.SPU, "spu-5002")
    delta = sync.delta(2)
    assert delta.replicas_removed == ["orders-1"]
    assert delta.spus_removed == [5002]  # by id: the SPU knows ids, not store keys
    assert delta.spus_changed == [] and delta.replicas_changed == []


async def test_an_spu_gets_only_the_replicas_it_hosts_and_loses_one_moved_away(
    store: Store,
) -> None:
    await store.put_partition("orders-1", 5002, [5002])
    specs = ReplicaSpecs()
    sync = SpecSync(store.cache, 5001, specs=specs)
    full = await sync.full_sync(1)
    assert sorted(s.id for s in full.spus) == [5001, 5002]  # peers' endpoints: all SPUs
    assert [r.partition for r in full.replicas] == ["orders-0"]

    await store.put_partition("orders-0", 5002, [5002, 5003])  # moved off 5001
    await store.put_partition("orders-2", 5001, [5001])
    delta = sync.delta(1)
    assert [r.partition for r in delta.replicas_changed] == ["orders-2"]
    assert delta.replicas_removed == ["orders-0"]

    # another SPU's connection reuses the specs built for this one
    other = await SpecSync(store.cache, 5002, specs=specs).full_sync(1)
    assert sorted(r.partition for r in other.replicas) == ["orders-0", "orders-1"]
    assert len(specs) == 3


async def test_a_full_sync_yields_between_slices_and_what_changes_meanwhile_follows(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spu_spec_sync, "SYNC_SLICE", 1)
    await store.put_partition("orders-1", 5001, [5001])
    sync = SpecSync(store.cache, 5001)
    building = asyncio.create_task(sync.full_sync(1))
    await asyncio.sleep(0)  # the first slice is built, the build waits for its turn
    assert not building.done()
    await store.put_partition("orders-0", 5002, [5001, 5002])  # changes while it builds
    full = await building
    assert sorted(r.partition for r in full.replicas) == ["orders-0", "orders-1"]
    assert [(r.partition, r.leader) for r in sync.delta(1).replicas_changed] == [("orders-0", 5002)]


async def test_status_changes_do_not_reach_the_spu(store: Store) -> None:
    sync = SpecSync(store.cache)
    await sync.full_sync(1)
    online = PartitionStatus(resolution=PartitionResolution.ONLINE)
    await store.put_partition("orders-0", 5001, [5001, 5002], status=online)
    assert not sync.has_change()
    assert sync.delta(1).is_empty


async def test_waiting_for_a_change_returns_on_a_spec_change_or_the_timeout(store: Store) -> None:
    sync = SpecSync(store.cache)
    await sync.full_sync(1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await sync.wait_for_change(0.05)
    assert loop.time() - started >= 0.04

    waiting = asyncio.create_task(sync.wait_for_change(5.0), name="await-spec-change")
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await store.put_partition("orders-9", 5001, [5001])
    await asyncio.wait_for(waiting, 1.0)
    assert [r.partition for r in sync.delta(1).replicas_changed] == ["orders-9"]


def orders_topic(**storage: int | None) -> TopicSpec:
    return TopicSpec(
        replicas=TopicReplicas(computed=ComputedReplicas(partitions=3, replication_factor=2)),
        **storage,
    )


async def test_replica_specs_carry_the_topics_retention_and_segment_settings(
    store: Store,
) -> None:
    # no topic cached: the defaults (an SPU keeps everything, 1 GiB segments)
    sync = SpecSync(store.cache)
    assert (await sync.full_sync(1)).replicas[0].storage == ReplicaStorage()

    spec = orders_topic(segment_size=4096, retention_time_seconds=60, max_partition_size=8192)
    await store.put(Kind.TOPIC, "orders", encode_value(spec))
    # the topic came after its partition: its partitions' specs go again
    assert sync.has_change()
    delta = sync.delta(1)
    expected = ReplicaStorage(segment_size=4096, retention_time_seconds=60, max_partition_size=8192)
    assert [(r.partition, r.storage) for r in delta.replicas_changed] == [("orders-0", expected)]
    assert (await SpecSync(store.cache).full_sync(2)).replicas[0].storage == expected

    # a spec change reaches the partitions' replica specs; other topics' do not move
    await store.put(Kind.TOPIC, "orders", encode_value(orders_topic(retention_time_seconds=5)))
    await store.put(Kind.TOPIC, "other", encode_value(orders_topic()))
    delta = sync.delta(3)
    assert [(r.partition, r.storage) for r in delta.replicas_changed] == [
        ("orders-0", ReplicaStorage(retention_time_seconds=5))
    ]
    assert sync.delta(3).is_empty


def test_a_replica_spec_without_storage_settings_is_still_valid() -> None:
    old = ReplicaSpec.model_validate_json(
        '{"partition": "orders-0", "leader": 5001, "replicas": [5001]}'
    )
    assert old.storage == ReplicaStorage() and old.storage.retains_all
    new = ReplicaSpec(
        partition="orders-0",
        leader=5001,
        replicas=[5001],
        storage=ReplicaStorage(segment_size=1024, retention_time_seconds=10),
    )
    assert ReplicaSpec.model_validate_json(new.model_dump_json()) == new
    assert not new.storage.retains_all


async def test_specs_are_kept_warm_as_partitions_are_cached_and_change(store: Store) -> None:
    specs = ReplicaSpecs(store.cache.topics)
    warm = asyncio.create_task(keep_warm(specs, store.cache, interval=0.01), name="warm")
    try:
        await store.put_partition("orders-1", 5002, [5002, 5001])

        async def built(key: str, leader: int) -> None:
            await eventually(
                lambda: (spec := specs.built(key)) is not None and spec.leader == leader,
                what=f"{key} built with leader {leader}",
            )

        await built("orders-0", 5001)  # cached before: built on the first look
        await built("orders-1", 5002)  # cached after: built as it came
        await store.put_partition("orders-1", 5001, [5002, 5001])
        await built("orders-1", 5001)  # its new leader, before any SPU asked
        assert len(specs) == 2
    finally:
        warm.cancel()
        await asyncio.gather(warm, return_exceptions=True)


async def test_each_spus_whole_set_is_built_in_the_pass_that_cached_its_partitions(
    store: Store,
) -> None:
    """A replica that just listed its cache (every partition new to ``keep_warm``) has
    each SPU's set ready in that same pass, not one ``warm_interval`` later (here an
    hour): it may win the next election at once."""
    specs = ReplicaSpecs(store.cache.topics)
    warm = asyncio.create_task(keep_warm(specs, store.cache, interval=3600), name="warm")
    try:
        for spu_id in (5001, 5002):
            await eventually(
                lambda spu_id=spu_id: specs.is_hosted_current(spu_id, spec_version(store.cache)),
                what=f"spu {spu_id}'s set warm",
            )
    finally:
        warm.cancel()
        await asyncio.gather(warm, return_exceptions=True)


async def test_the_specs_are_warm_only_after_a_pass_that_began_with_the_cache_listed(
    store: Store,
) -> None:
    """``warm`` (what a replica's readiness to lead waits for) is not set by a pass over
    a cache still being listed, however few SPUs it held then."""
    specs = ReplicaSpecs(store.cache.topics)
    listed = asyncio.Event()
    passes = 0

    def counting_listed() -> bool:
        nonlocal passes
        passes += 1
        return listed.is_set()

    warm = asyncio.create_task(
        keep_warm(specs, store.cache, interval=0.01, listed=counting_listed), name="warm"
    )
    try:
        await eventually(lambda: passes >= 3, what="three passes over a cache not listed")
        assert not specs.warm
        listed.set()
        await eventually(lambda: specs.warm, what="the specs warm")
        for spu_id in (5001, 5002):
            assert specs.is_hosted_current(spu_id, spec_version(store.cache))
    finally:
        warm.cancel()
        await asyncio.gather(warm, return_exceptions=True)


async def test_each_spus_whole_set_is_kept_warm_and_serves_full_syncs_until_a_spec_changes(
    store: Store,
) -> None:
    specs = ReplicaSpecs(store.cache.topics)
    warm = asyncio.create_task(keep_warm(specs, store.cache, interval=0.01), name="warm")
    try:
        await store.put_partition("orders-1", 5002, [5002])

        async def current(spu_id: int) -> None:
            await eventually(
                lambda: specs.is_hosted_current(spu_id, spec_version(store.cache)),
                what=f"spu {spu_id}'s set warm",
            )

        await current(5001)
        await current(5002)
        # kept: a full sync copies the set (nothing looked at again)
        full = await SpecSync(store.cache, 5002, specs=specs).full_sync(1)
        assert sorted(r.partition for r in full.replicas) == ["orders-0", "orders-1"]
        # a spec change leaves the set behind; the next full sync has the change
        await store.put_partition("orders-1", 5001, [5001])
        full = await SpecSync(store.cache, 5002, specs=specs).full_sync(2)
        assert [r.partition for r in full.replicas] == ["orders-0"]
        full = await SpecSync(store.cache, 5001, specs=specs).full_sync(2)
        assert sorted((r.partition, r.leader) for r in full.replicas) == [
            ("orders-0", 5001),
            ("orders-1", 5001),
        ]
        await store.delete(Kind.PARTITION, "orders-0")
        full = await SpecSync(store.cache, 5001, specs=specs).full_sync(3)
        assert [r.partition for r in full.replicas] == ["orders-1"]
        # the topic's settings reach its partitions in the kept set
        await store.put(Kind.TOPIC, "orders", encode_value(orders_topic(retention_time_seconds=60)))
        full = await SpecSync(store.cache, 5001, specs=specs).full_sync(4)
        assert [r.storage.retention_time_seconds for r in full.replicas] == [60]
    finally:
        warm.cancel()
        await asyncio.gather(warm, return_exceptions=True)
