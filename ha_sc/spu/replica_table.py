"""The replicas this SPU holds, as the SC last specified them.

Pure state: the SC's replica specs go in, and out come the changes in the
words an operator reads (added, promoted, demoted, now follows, removed). A spec
that does not list this SPU among its replicas is not this SPU's business: a
replica it held is removed, one it did not hold is ignored.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, KeysView
from dataclasses import dataclass, replace

from ha_sc.protocol import ReplicaSpec, ReplicaStorage
from ha_sc.protocol.messages import NO_STORAGE_SETTINGS


class ReplicaRole(enum.StrEnum):
    LEADER = "leader"
    FOLLOWER = "follower"


@dataclass(frozen=True, slots=True)
class LocalReplica:
    """One partition replica held by this SPU."""

    partition: str
    role: ReplicaRole
    leader: int
    """The SPU that leads the partition (this one when ``role`` is leader)."""
    replicas: tuple[int, ...]
    storage: ReplicaStorage = NO_STORAGE_SETTINGS
    """The topic's segment and retention settings for this replica's log."""
    generation: int | None = None
    """The partition's identity in the store (None from an SC that sends none)."""

    def is_another_partition(self, other: LocalReplica) -> bool:
        """``other`` has this key but is another partition (its topic was created again)."""
        return (
            self.generation is not None
            and other.generation is not None
            and self.generation != other.generation
        )

    def describe(self) -> str:
        if self.role is ReplicaRole.LEADER:
            return "leader"
        return f"follower of spu {self.leader}"


def describe_storage(storage: ReplicaStorage) -> str:
    """The settings in an operator's words: "segments of 1024 bytes, retention 60 s"."""
    parts = []
    if storage.segment_size is not None:
        parts.append(f"segments of {storage.segment_size} bytes")
    if storage.retention_time_seconds is not None:
        parts.append(f"retention {storage.retention_time_seconds} s")
    if storage.max_partition_size is not None:
        parts.append(f"at most {storage.max_partition_size} bytes")
    return ", ".join(parts) or "the defaults"


class ChangeKind(enum.StrEnum):
    ADDED = "added"
    PROMOTED = "promoted"
    DEMOTED = "demoted"
    LEADER_CHANGED = "leader changed"
    REPLICAS_CHANGED = "replicas changed"
    STORAGE_CHANGED = "storage settings changed"
    REPLACED = "replaced"
    """Another partition of the same key: the old replica's log goes, the new starts empty."""
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class ReplicaChange:
    """What one spec did to one local replica."""

    kind: ChangeKind
    before: LocalReplica | None
    after: LocalReplica | None

    @property
    def partition(self) -> str:
        replica = self.after or self.before
        assert replica is not None
        return replica.partition

    def __str__(self) -> str:
        before, after = self.before, self.after
        name = f"replica {self.partition}"
        if self.kind is ChangeKind.ADDED and after is not None:
            return f"{name} added as {after.describe()}"
        if self.kind is ChangeKind.REMOVED and before is not None:
            return f"{name} removed (was {before.describe()})"
        if before is None or after is None:
            return f"{name} {self.kind}"
        if self.kind is ChangeKind.REPLACED:
            return (
                f"{name} is another partition now (generation {before.generation} -> "
                f"{after.generation}): {after.describe()}, its log starts empty"
            )
        if self.kind is ChangeKind.PROMOTED:
            return f"{name} promoted to leader (was {before.describe()})"
        if self.kind is ChangeKind.DEMOTED:
            return f"{name} demoted to {after.describe()}"
        if self.kind is ChangeKind.LEADER_CHANGED:
            return f"{name} now follows spu {after.leader} (was spu {before.leader})"
        if self.kind is ChangeKind.STORAGE_CHANGED:
            return f"{name} storage settings now {describe_storage(after.storage)}"
        return f"{name} replicas now {list(after.replicas)} (were {list(before.replicas)})"


class ReplicaTable:
    """Local replicas of SPU ``spu_id`` by partition key."""

    def __init__(self, spu_id: int) -> None:
        self.spu_id = spu_id
        self._replicas: dict[str, LocalReplica] = {}
        self._touched: set[str] = set()
        self._feeds: list[set[str]] = []

    def take_touched(self) -> set[str]:
        """Partitions added, changed or removed since the last call (then forgotten)."""
        touched, self._touched = self._touched, set()
        return touched

    def touched_feed(self) -> set[str]:
        """A set this table adds every partition added, changed or removed to from now
        on; its holder takes out the keys it has handled (another reader of the changes
        besides ``take_touched``, which keeps its own)."""
        feed: set[str] = set()
        self._feeds.append(feed)
        return feed

    def __len__(self) -> int:
        return len(self._replicas)

    def __contains__(self, partition: object) -> bool:
        return partition in self._replicas

    def get(self, partition: str) -> LocalReplica | None:
        return self._replicas.get(partition)

    def partitions(self) -> KeysView[str]:
        """The partition keys held, in no order (a view: no copy, no sort)."""
        return self._replicas.keys()

    def replicas(self) -> tuple[LocalReplica, ...]:
        """Every local replica, by partition key."""
        return tuple(self._replicas[key] for key in sorted(self._replicas))

    def replace(self, specs: Iterable[ReplicaSpec]) -> list[ReplicaChange]:
        """Make the table hold exactly the replicas ``specs`` give this SPU (a full sync)."""
        specs = list(specs)
        listed = {spec.partition for spec in specs}
        gone = [key for key in self._replicas if key not in listed]
        return self.update(specs, gone)

    def update(
        self, changed: Iterable[ReplicaSpec], removed: Iterable[str] = ()
    ) -> list[ReplicaChange]:
        """Apply changed specs and removed partitions (a delta)."""
        changes: list[ReplicaChange] = []
        for key in removed:
            before = self._replicas.pop(key, None)
            if before is not None:
                changes.append(ReplicaChange(ChangeKind.REMOVED, before, None))
        for spec in changed:
            change = self._apply(spec)
            if change is not None:
                changes.append(change)
        keys = [change.partition for change in changes]
        self._touched.update(keys)
        for feed in self._feeds:
            feed.update(keys)
        return changes

    def _apply(self, spec: ReplicaSpec) -> ReplicaChange | None:
        before = self._replicas.get(spec.partition)
        if self.spu_id not in spec.replicas:
            if before is None:
                return None
            del self._replicas[spec.partition]
            return ReplicaChange(ChangeKind.REMOVED, before, None)
        role = ReplicaRole.LEADER if spec.leader == self.spu_id else ReplicaRole.FOLLOWER
        after = LocalReplica(
            spec.partition,
            role,
            spec.leader,
            tuple(spec.replicas),
            spec.storage,
            spec.generation,
        )
        self._replicas[spec.partition] = after
        if before is None:
            return ReplicaChange(ChangeKind.ADDED, None, after)
        if before == after:
            return None
        if before.is_another_partition(after):
            return ReplicaChange(ChangeKind.REPLACED, before, after)
        if before == replace(after, generation=before.generation):
            return None  # its generation first told (by a newer SC): the same replica
        if before.role is not after.role:
            kind = ChangeKind.PROMOTED if role is ReplicaRole.LEADER else ChangeKind.DEMOTED
        elif before.leader != after.leader:
            kind = ChangeKind.LEADER_CHANGED
        elif before.replicas != after.replicas:
            kind = ChangeKind.REPLICAS_CHANGED
        else:
            kind = ChangeKind.STORAGE_CHANGED
        return ReplicaChange(kind, before, after)
