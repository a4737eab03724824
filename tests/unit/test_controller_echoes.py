"""Whether the cache shows a pass's writes: created, deleted, or at another revision."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ha_sc.controllers import CreateObject, DeleteObject, UpdateSpec, UpdateStatus
from ha_sc.controllers.echoes import echoed, not_echoed
from ha_sc.kv.memory import MemoryKv
from ha_sc.model import (
    Kind,
    PartitionResolution,
    PartitionSpec,
    PartitionStatus,
    encode_value,
)
from ha_sc.store import GlobalStore, start_dispatchers
from ha_sc.tasks import Supervisor
from tests.waiting import eventually

SPEC = PartitionSpec(leader=5001, replicas=[5001, 5002])
ONLINE = PartitionStatus(resolution=PartitionResolution.ONLINE)


@pytest.fixture
async def store() -> AsyncIterator[tuple[MemoryKv, GlobalStore]]:
    kv, cache, supervisor = MemoryKv(), GlobalStore(), Supervisor()
    start_dispatchers(cache, kv, supervisor)
    yield kv, cache
    await supervisor.stop()


async def test_each_kind_of_write_is_echoed_once_the_cache_shows_it(
    store: tuple[MemoryKv, GlobalStore],
) -> None:
    kv, cache = store
    create = CreateObject(Kind.PARTITION, "orders-0", SPEC, ONLINE)
    assert not echoed(create, cache)
    revision = await kv.create(Kind.PARTITION.value, "orders-0", encode_value(SPEC))
    await eventually(lambda: "orders-0" in cache.partitions)
    assert echoed(create, cache)
    update = UpdateStatus(Kind.PARTITION, "orders-0", revision, ONLINE)
    respec = UpdateSpec(Kind.PARTITION, "orders-0", revision, SPEC)
    delete = DeleteObject(Kind.PARTITION, "orders-0", revision)
    assert not_echoed([update, respec, delete], cache) == [update, respec, delete]
    await kv.update(
        Kind.PARTITION.value,
        "orders-0",
        encode_value(SPEC, ONLINE),
        expected_revision=revision,
    )
    await eventually(lambda: cache.partitions.revision > revision)
    assert not_echoed([update, respec, delete], cache) == []  # each is stale or done
    unconditional = DeleteObject(Kind.PARTITION, "orders-0")
    assert not echoed(unconditional, cache)
    await kv.delete(Kind.PARTITION.value, "orders-0")
    await eventually(lambda: "orders-0" not in cache.partitions)
    assert echoed(unconditional, cache)
