"""What one SPU has been sent of the cached SPU and partition specs, and what it needs next.

No I/O: the connection asks for the full sync once, then for a delta whenever
the cache's specs change. Status changes are not the SPU's business and do not
wake it. An SPU gets every SPU spec (it needs its peers' endpoints) and the
replica specs of the partitions it hosts; when a partition moves off it, the
delta removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from ha_sc.model.kinds import Partition, Spu
from ha_sc.model.meta import StoredObject
from ha_sc.model.spu import SpuSpec
from ha_sc.protocol import Delta, FullSync, ReplicaSpec
from ha_sc.store import ChangeFocus, Changes, GlobalStore

T = TypeVar("T")


def replica_spec(partition: Partition) -> ReplicaSpec:
    """The replica spec an SPU gets for a cached partition (built without validating
    again what the cache holds valid: a full sync builds thousands)."""
    return ReplicaSpec.model_construct(
        partition=partition.key,
        leader=partition.spec.leader,
        replicas=list(partition.spec.replicas),
    )


class ReplicaSpecs:
    """Replica specs built once per partition revision and shared by every SPU connection
    of a replica: after a failover every SPU asks for a full sync at once."""

    def __init__(self) -> None:
        self._built: dict[str, tuple[int, ReplicaSpec]] = {}

    def __len__(self) -> int:
        return len(self._built)

    def of(self, partition: Partition) -> ReplicaSpec:
        revision = partition.meta.revision
        built = self._built.get(partition.key)
        if built is not None and built[0] == revision:
            return built[1]
        spec = replica_spec(partition)
        self._built[partition.key] = (revision, spec)
        return spec

    def keep_only(self, keys: set[str]) -> None:
        """Forget partitions no longer in the cache."""
        for key in [k for k in self._built if k not in keys]:
            del self._built[key]


def hosted_by(spu_id: int | None, specs: ReplicaSpecs) -> Callable[[Partition], ReplicaSpec | None]:
    """The replica spec of a partition ``spu_id`` hosts; None for others (``spu_id``
    None: every partition)."""

    def convert(partition: Partition) -> ReplicaSpec | None:
        if spu_id is not None and spu_id not in partition.spec.replicas:
            return None
        return specs.of(partition)

    return convert


def spu_spec(spu: Spu) -> SpuSpec:
    """The SPU spec as sent: the cached one."""
    return spu.spec


class SpecSync:
    """The cursor of one SPU connection over the cache's specs."""

    def __init__(
        self,
        cache: GlobalStore,
        spu_id: int | None = None,
        *,
        specs: ReplicaSpecs | None = None,
    ) -> None:
        self._cache = cache
        self._specs = specs if specs is not None else ReplicaSpecs()
        self._replica_spec = hosted_by(spu_id, self._specs)
        self._spus = cache.spus.listen(focus=ChangeFocus.SPEC)
        self._partitions = cache.partitions.listen(focus=ChangeFocus.SPEC)
        self._sent_spus: dict[str, SpuSpec] = {}
        """Cache key -> the spec the SPU has; deletes name keys, the SPU knows ids."""
        self._sent_replicas: dict[str, ReplicaSpec] = {}

    def full_sync(self, epoch: int, trace: dict[str, str] | None = None) -> FullSync:
        """Everything, as of now; the SPU replaces what it had with it."""
        self._spus.take_changes()  # both cursors move to now; nothing awaits until we read
        self._partitions.take_changes()
        self._sent_spus = {spu.key: spu_spec(spu) for spu in self._cache.spus.objects()}
        partitions = self._cache.partitions.objects()
        self._sent_replicas = {
            p.key: spec for p in partitions if (spec := self._replica_spec(p)) is not None
        }
        if len(self._specs) > len(partitions):
            self._specs.keep_only({p.key for p in partitions})
        return FullSync(
            epoch=epoch,
            trace=trace or {},
            spus=list(self._sent_spus.values()),
            replicas=list(self._sent_replicas.values()),
        )

    def has_change(self) -> bool:
        return self._spus.has_change() or self._partitions.has_change()

    def delta(self, epoch: int, trace: dict[str, str] | None = None) -> Delta:
        """The spec changes since the last message; empty when nothing the SPU holds changed."""
        before = dict(self._sent_spus)
        spus_changed, removed_keys = _diff(self._sent_spus, self._spus.take_changes(), spu_spec)
        still_present = {spec.id for spec in self._sent_spus.values()}
        spus_removed = sorted({before[key].id for key in removed_keys} - still_present)
        replicas_changed, replicas_removed = _diff(
            self._sent_replicas, self._partitions.take_changes(), self._replica_spec
        )
        return Delta(
            epoch=epoch,
            trace=trace or {},
            spus_changed=spus_changed,
            spus_removed=spus_removed,
            replicas_changed=replicas_changed,
            replicas_removed=replicas_removed,
        )

    async def wait_for_change(self, timeout: float) -> None:
        """Return once a spec changed, or after ``timeout`` seconds."""
        if self.has_change():
            return
        waits = [
            asyncio.create_task(self._spus.wait_for_change(), name="await-spu-specs"),
            asyncio.create_task(self._partitions.wait_for_change(), name="await-replica-specs"),
        ]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waits, return_exceptions=True)


def _diff(
    sent: dict[str, T],
    changes: Changes[Any, Any],
    convert: Callable[[StoredObject[Any, Any]], T | None],
) -> tuple[list[T], list[str]]:
    """Bring ``sent`` up to ``changes``; return what is new or different, and removed keys.

    ``convert`` returns None for an object the SPU is not to have (any more).
    """
    converted = {obj.key: convert(obj) for obj in changes.updates}
    current = {key: spec for key, spec in converted.items() if spec is not None}
    dropped = [key for key, spec in converted.items() if spec is None and key in sent]
    if changes.is_full_sync:
        removed = [key for key in sent if key not in current]
    else:
        removed = [key for key in changes.deletes if key in sent] + dropped
    changed = [spec for key, spec in current.items() if sent.get(key) != spec]
    for key in removed:
        del sent[key]
    sent.update(current)
    return changed, removed
