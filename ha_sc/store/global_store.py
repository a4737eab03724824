"""The replica's cache: one store per kind, read-only to all but the dispatchers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ha_sc.model.kinds import Kind
from ha_sc.model.partition import PartitionSpec, PartitionStatus
from ha_sc.model.spu import SpuSpec, SpuStatus
from ha_sc.model.spu_group import SpuGroupSpec, SpuGroupStatus
from ha_sc.model.topic import TopicSpec, TopicStatus
from ha_sc.store.epoch_map import DEFAULT_MAX_TOMBSTONES, LocalStore
from ha_sc.store.view import StoreView


def partition_topic(key: str) -> str:
    """The topic of a partition key ("topic-N"), unchecked: the cache holds valid keys."""
    return key.rpartition("-")[0]


class GlobalStore:
    """Every cached kind of the cluster.

    The typed accessors (``spus``, ``spu_groups``, ``topics``, ``partitions``)
    and ``view`` give read-only views; ``local_store`` gives the write side and
    is meant only for wiring each kind's dispatcher.
    """

    def __init__(self, *, max_tombstones: int = DEFAULT_MAX_TOMBSTONES) -> None:
        self._spus = LocalStore[SpuSpec, SpuStatus](Kind.SPU, max_tombstones=max_tombstones)
        self._spu_groups = LocalStore[SpuGroupSpec, SpuGroupStatus](
            Kind.SPU_GROUP, max_tombstones=max_tombstones
        )
        self._topics = LocalStore[TopicSpec, TopicStatus](Kind.TOPIC, max_tombstones=max_tombstones)
        self._partitions = LocalStore[PartitionSpec, PartitionStatus](
            Kind.PARTITION, max_tombstones=max_tombstones, group_of=partition_topic
        )
        self._by_kind: dict[Kind, LocalStore[Any, Any]] = {
            Kind.SPU: self._spus,
            Kind.SPU_GROUP: self._spu_groups,
            Kind.TOPIC: self._topics,
            Kind.PARTITION: self._partitions,
        }

    @property
    def spus(self) -> StoreView[SpuSpec, SpuStatus]:
        return self._spus

    @property
    def spu_groups(self) -> StoreView[SpuGroupSpec, SpuGroupStatus]:
        return self._spu_groups

    @property
    def topics(self) -> StoreView[TopicSpec, TopicStatus]:
        return self._topics

    @property
    def partitions(self) -> StoreView[PartitionSpec, PartitionStatus]:
        return self._partitions

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return tuple(self._by_kind)

    def view(self, kind: Kind) -> StoreView[Any, Any]:
        """The read-only store of ``kind``."""
        return self._by_kind[kind]

    def local_store(self, kind: Kind) -> LocalStore[Any, Any]:
        """The writable store of ``kind``: for its dispatcher only."""
        return self._by_kind[kind]

    @property
    def revision(self) -> int:
        """The lowest KV revision any kind reflects: the whole cache reflects at least this."""
        return min(store.revision for store in self._by_kind.values())

    async def wait_for_marks(self, marks: Mapping[Kind, int]) -> None:
        """Return once each kind's store has applied its progress mark (at ``marks[kind]``).

        No re-list is asked for: each mark comes through its kind's watch, so the
        wait costs the same with ten objects or a hundred thousand.
        """
        for kind, revision in marks.items():
            await self._by_kind[kind].wait_for_revision(revision, relist=False)

    async def wait_for_revision(self, revision: int) -> None:
        """Return once every kind reflects KV revision ``revision`` or a later one.

        A new leader awaits this with the revision at which it won before it acts.
        """
        for store in self._by_kind.values():
            store.request_revision(revision)  # all kinds catch up at once
        for store in self._by_kind.values():
            await store.wait_for_revision(revision)
