"""``ClusterMetadata``: which SPU leads each partition and where SPUs listen, as last known.

Learned from the SC's public API (any replica, standbys included): a full list on
demand, a watch of partitions and SPUs in the background, and hints from SPUs that
answer "not leader" naming the leader. Readers never wait on the SC for what is
cached: ``route`` answers from memory; ``request_refresh`` only wakes the refresher.
While no SC replica answers, the last metadata stays in use.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from ha_sc.client.data_errors import UnknownTopic
from ha_sc.client.errors import ApiError
from ha_sc.model.kinds import Kind, Partition, Spu
from ha_sc.model.partition import parse_partition_key
from ha_sc.protocol.api_wire import WatchBatch
from ha_sc.tasks import Supervisor, TaskFailure

log = logging.getLogger(__name__)

WATCH_IDLE_TIMEOUT = 40.0
"""Seconds of silence after which the watch reconnects (the SC sends a heartbeat every 15 s)."""
RETRY_PAUSE = (0.2, 2.0)
"""Bounds of the pause before the watch reconnects after a failure, in seconds."""


class MetadataSource(Protocol):
    """What the metadata is read from: the admin client, or a stand-in in tests."""

    async def list_partitions(self, topic: str | None = None) -> list[Partition]: ...

    async def list_spus(self) -> list[Spu]: ...

    def watch(
        self,
        kinds: Iterable[Kind | str] | None = None,
        *,
        idle_timeout: float = 60.0,
        heartbeats: bool = False,
    ) -> AbstractAsyncContextManager[AsyncIterator[WatchBatch]]: ...


@dataclass(frozen=True, slots=True)
class Route:
    """Where to send a partition's produce and fetch requests."""

    leader: int
    address: str | None
    """The leader SPU's public address; None when no SPU of that id is known."""


class ClusterMetadata:
    """Partition leaders and SPU public addresses, cached and kept fresh."""

    def __init__(
        self,
        source: MetadataSource,
        *,
        watch: bool = True,
        min_refresh_interval: float = 0.1,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._source = source
        self.tls = tls
        """The client context the SPUs' public ports are dialled with (None: plain TCP)."""
        self._watch = watch
        self._min_refresh_interval = min_refresh_interval
        self._leaders: dict[tuple[str, int], int] = {}
        self._spu_addresses: dict[int, str] = {}
        self._spu_ids: dict[str, int] = {}
        self._hinted_addresses: dict[int, str] = {}
        self._refresh_wanted = asyncio.Event()
        self.last_error: str | None = None
        """Why the last exchange with the SC failed; None once one succeeded."""
        self.supervisor = Supervisor(on_fatal=self._task_failed)

    async def start(self) -> None:
        """Start the refresher (and the watch, if asked for)."""
        self.supervisor.start("metadata-refresher", self._refresher())
        if self._watch:
            self.supervisor.start("metadata-watch", self._watcher())

    async def close(self) -> None:
        await self.supervisor.stop()

    # reading

    def route(self, topic: str, partition: int) -> Route | None:
        """The partition's leader as last known, or None if it is not known."""
        leader = self._leaders.get((topic, partition))
        if leader is None:
            return None
        address = self._spu_addresses.get(leader) or self._hinted_addresses.get(leader)
        return Route(leader, address)

    def partition_count(self, topic: str) -> int | None:
        """How many partitions the topic has, as last known."""
        indexes = [index for (name, index) in self._leaders if name == topic]
        return max(indexes) + 1 if indexes else None

    async def wait_partition_count(self, topic: str, *, timeout: float) -> int:
        """The topic's partition count; asks the SC only if none is cached.

        Asks again until ``timeout``: the replica that answers may be a standby whose
        cache is a moment behind the leader that just created the topic.
        Raises UnknownTopic if the SC does not know the topic, or no replica answered."""
        count = self.partition_count(topic)
        if count is not None:
            return count
        pause = 0.05
        answered = False
        try:
            async with asyncio.timeout(timeout):
                await self.refresh()
                answered = True
                while self.partition_count(topic) is None:
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 0.4)
                    await self.refresh()
        except TimeoutError:
            if not answered:
                self.last_error = f"no SC replica answered within {timeout:g} s"
        count = self.partition_count(topic)
        if count is None:
            reason = self.last_error or "the SC lists no partitions of it"
            raise UnknownTopic(f"topic {topic!r} is not known: {reason}")
        return count

    # learning

    def leader_moved(self, topic: str, partition: int, leader: int, address: str | None) -> None:
        """An SPU said ``leader`` leads the partition now (at ``address``, if it said)."""
        self._leaders[(topic, partition)] = leader
        if address:
            self._hinted_addresses[leader] = address
        log.info("partition %s-%d: leader is spu %d, as an spu says", topic, partition, leader)

    def request_refresh(self) -> None:
        """Ask for a fresh list from the SC soon; returns at once."""
        self._refresh_wanted.set()

    async def refresh(self) -> None:
        """List partitions and SPUs from the SC now; on failure keep what is cached."""
        try:
            partitions = await self._source.list_partitions()
            spus = await self._source.list_spus()
        except ApiError as exc:
            self.last_error = f"SC unreachable: {exc.message}"
            log.info("metadata refresh failed, keeping the last known: %s", exc.message)
            return
        self.last_error = None
        self._replace_partitions(partitions)
        self._replace_spus(spus)

    def apply(self, batch: WatchBatch) -> None:
        """Take in one batch of a watch stream."""
        if batch.kind is Kind.PARTITION:
            if batch.full_sync:
                self._replace_partitions(batch.updates)
            else:
                for partition in batch.updates:
                    self._set_partition(partition)
                for key in batch.deletes:
                    self._leaders.pop(_partition_of(key) or ("", -1), None)
        elif batch.kind is Kind.SPU:
            if batch.full_sync:
                self._replace_spus(batch.updates)
            else:
                for spu in batch.updates:
                    self._set_spu(spu)
                for name in batch.deletes:
                    spu_id = self._spu_ids.pop(name, None)
                    if spu_id is not None:
                        self._spu_addresses.pop(spu_id, None)

    def _replace_partitions(self, partitions: Iterable[Partition]) -> None:
        self._leaders.clear()
        for partition in partitions:
            self._set_partition(partition)

    def _set_partition(self, partition: Partition) -> None:
        where = _partition_of(partition.key)
        if where is not None:
            self._leaders[where] = partition.spec.leader

    def _replace_spus(self, spus: Iterable[Spu]) -> None:
        self._spu_addresses.clear()
        self._spu_ids.clear()
        for spu in spus:
            self._set_spu(spu)

    def _set_spu(self, spu: Spu) -> None:
        self._spu_ids[spu.key] = spu.spec.id
        self._spu_addresses[spu.spec.id] = str(spu.spec.public_endpoint)

    # background

    async def _refresher(self) -> None:
        while True:
            await self._refresh_wanted.wait()
            self._refresh_wanted.clear()
            await self.refresh()
            await asyncio.sleep(self._min_refresh_interval)

    async def _watcher(self) -> None:
        pause = RETRY_PAUSE[0]
        while True:
            try:
                async with self._source.watch(
                    [Kind.PARTITION, Kind.SPU], idle_timeout=WATCH_IDLE_TIMEOUT
                ) as stream:
                    async for batch in stream:
                        self.apply(batch)
                        self.last_error = None
                        pause = RETRY_PAUSE[0]
            except ApiError as exc:
                self.last_error = f"SC unreachable: {exc.message}"
                log.info("metadata watch interrupted, retrying in %.1f s: %s", pause, exc.message)
            await asyncio.sleep(pause * random.random())  # full jitter
            pause = min(pause * 2, RETRY_PAUSE[1])

    def _task_failed(self, failure: TaskFailure) -> None:
        log.error("metadata: %s; the cached metadata stays in use", failure)


def _partition_of(key: str) -> tuple[str, int] | None:
    try:
        return parse_partition_key(key)
    except ValueError:
        return None
