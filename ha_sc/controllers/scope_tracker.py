"""The loop's memory between passes: what changed since the last, so a pass plans only
that (``plan_scope`` says what a pass must plan, and why the rest can wait).

It reads the cache on the event loop, before the plan: the
stores' ``changes_since`` walks back over the changes alone, the topics' partitions come
from the partition cache's index by topic, and the SPUs' reports are amended into a
``ReportedOffsetsBook``. An idle look costs the number of topics, not of partitions.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from ha_sc.controllers.cluster_plan import PassPlan
from ha_sc.controllers.partitions.reported_offsets import ReportedOffsetsBook
from ha_sc.controllers.partitions.status_offsets import ReportedOffsets
from ha_sc.controllers.plan_scope import CarriedOver, PlanScope, carried_over, scope_of_changes
from ha_sc.model.kinds import Partition
from ha_sc.protocol import StatusReport
from ha_sc.store import GlobalStore

FULL_SHARE = 0.5
"""A scope over more than this share of the partitions makes a full pass instead."""


@dataclass(frozen=True, slots=True)
class Look:
    """What the next pass plans: ``scope`` None for everything. The SPUs' reports are
    taken into ``book`` by ``settle`` (on a worker thread when they changed: after a
    registration an SPU's report holds 66k replicas)."""

    scope: PlanScope | None
    why: str
    """Why a full pass (empty for a scoped one), for the log."""
    book: ReportedOffsetsBook | None
    """None while SPU health is not judged: no offsets are read then."""
    reports: tuple[StatusReport, ...]
    partitions: int
    """Partitions cached when looking."""

    @property
    def is_idle(self) -> bool:
        """Nothing changed since the last pass: nothing to plan."""
        return (
            self.scope is not None
            and self.scope.is_empty
            and (self.book is None or self.book.is_current(self.reports))
        )

    def settle(self) -> tuple[PlanScope | None, Mapping[str, Mapping[int, ReportedOffsets]] | None]:
        """The scope, with the partitions whose reported offsets moved, and the offsets
        reported; call it once, off the event loop, before planning."""
        if self.book is None:
            return self.scope, None
        moved = self.book.update(self.reports)
        scope = self.scope
        if scope is not None and moved:
            scope = PlanScope(scope.topics, scope.partitions | moved)
            if len(scope.partitions) > FULL_SHARE * max(1, self.partitions):
                scope = None
        return scope, self.book.by_partition


@dataclass(frozen=True, slots=True)
class _Seen:
    """The cache and the SPUs as the last pass planned from them."""

    spus_epoch: int
    topics_epoch: int
    partitions_epoch: int
    partitions: Mapping[str, Partition]
    health: tuple[frozenset[int] | None, bool]


class ScopeTracker:
    """Says, before each pass, what it must plan (``look``); told what it planned
    (``planned``). ``reset`` at the start of a term: its first pass plans everything."""

    def __init__(self, cache: GlobalStore) -> None:
        self._cache = cache
        self._book = ReportedOffsetsBook()
        self._seen: _Seen | None = None
        self._carry = CarriedOver()
        self._full_due = 0.0

    def reset(self) -> None:
        self._seen = None
        self._carry = CarriedOver()
        self._book = ReportedOffsetsBook()

    def look(
        self,
        *,
        now: float,
        connected: Collection[int] | None,
        settling: bool,
        reports: Iterable[StatusReport],
    ) -> Look:
        """What the pass about to plan (at ``now``, monotonic seconds) must look at."""
        cache = self._cache
        book = self._book if connected is not None else None
        taken = tuple(reports) if book is not None else ()
        health = (None if connected is None else frozenset(connected), settling)
        seen, self._seen = (
            self._seen,
            _Seen(
                cache.spus.epoch,
                cache.topics.epoch,
                cache.partitions.epoch,
                cache.partitions.snapshot(),
                health,
            ),
        )
        count = len(cache.partitions)
        why = _why_full(seen, self._seen, self._carry, now, self._full_due)
        if seen is None or why:
            return Look(None, why, book, taken, count)
        scope = self._scope(seen)
        if scope is None:
            return Look(None, "the cache could not say what changed", book, taken, count)
        if len(scope.partitions) > FULL_SHARE * max(1, count):
            return Look(None, f"{len(scope.partitions)} partitions changed", book, taken, count)
        return Look(scope, "", book, taken, count)

    def planned(self, plan: PassPlan, *, full: bool, full_every: float, now: float) -> None:
        """The pass planned ``plan`` (everything if ``full``); the next full pass comes
        ``full_every`` seconds after a full one."""
        self._carry = carried_over(plan.actions, plan.undecided)
        if full:
            self._full_due = now + full_every

    def _scope(self, seen: _Seen) -> PlanScope | None:
        cache = self._cache
        topic_changes = cache.topics.changes_since(seen.topics_epoch)
        partition_changes = cache.partitions.changes_since(seen.partitions_epoch)
        if topic_changes.is_full_sync or partition_changes.is_full_sync:
            return None
        return scope_of_changes(
            carry=self._carry,
            topics_changed=[*(t.key for t in topic_changes.updates), *topic_changes.deletes],
            partitions_changed=partition_changes.updates,
            partitions_deleted=partition_changes.deletes,
            before=seen.partitions,
            topics=cache.topics.snapshot().values(),
            keys_in=cache.partitions.keys_in,
        )


def _why_full(
    seen: _Seen | None, now_seen: _Seen, carry: CarriedOver, now: float, full_due: float
) -> str:
    """Why the next pass must plan everything; empty if it need not."""
    if seen is None:
        return "first pass"
    if now >= full_due:
        return "periodic"
    if now_seen.spus_epoch != seen.spus_epoch:
        return "SPUs changed"
    if now_seen.health != seen.health:
        return "SPU health changed"
    if carry.spus:
        return "an SPU write of the last pass"
    return ""
