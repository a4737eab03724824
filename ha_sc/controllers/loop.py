"""The leader's reconciling loop: plan the whole cluster from the cache, write, repeat.

Level-based: every pass looks only at the current cache, so a new leader simply
continues where the last one stopped, and a write refused because the object
changed meanwhile is decided again on the next pass. A store that cannot commit
(no Raft majority, etcd unreachable) costs a pass, not the replica: the loop
pauses and plans again. A pass runs when any cached kind changes, when ``wake`` is
set (an SPU connected or went away: not a cache change, but the SPU health and
partition leaders depend on it), and at least every ``resync`` seconds. After a pass
that wrote, the next waits until the cache shows those writes (``echoes``), at most
``min_interval`` seconds after the pass started, so it does not decide again from the
objects they replaced; it then follows at once (a partition's new leader written, its
``Online`` next). Under a burst, a pass that wrote after one that wrote, the next waits
the whole ``min_interval``, so changes that keep coming cost a pass per interval;
after a pass that wrote nothing, there is nothing to wait for.

A pass plans what changed since the last one (``scope_tracker``), every object only
now and then. The plan is computed from immutable snapshots of the cache on the event
loop, ``cluster_plan.SLICE`` partitions at a time with the loop served in between: a
full pass over 100k partitions is about a second of CPU. On a worker thread it held the
GIL against the event loop, which then waited for it after each of its system calls
(the likely cause of SPUs unheard for over a second, and dropped). Passes are paced by what they
cost: after a plan that took ``p`` seconds the next
starts no sooner than ``pacing.pace * p`` after it, and the periodic one comes every
``pacing.resync_plans * p`` seconds if that is longer than ``resync``, so a large store
costs the leader at most half its time in planning, and little while nothing moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Coroutine, Generator, Mapping
from typing import Any

from opentelemetry.context import Context

from election.term import Term
from ha_sc.controllers.actions import Action
from ha_sc.controllers.cluster_plan import PassPlan, plan_steps
from ha_sc.controllers.echoes import not_echoed
from ha_sc.controllers.partitions.status_offsets import ReportedOffsets
from ha_sc.controllers.plan_scope import PlanScope
from ha_sc.controllers.scope_tracker import ScopeTracker
from ha_sc.controllers.settings import PacingSettings, WriteWindowSettings
from ha_sc.controllers.topics.validation import DEFAULT_LIMITS, TopicLimits
from ha_sc.controllers.write_waves import apply_actions
from ha_sc.controllers.write_window import WriteWindow
from ha_sc.controllers.writer import ActionWriter
from ha_sc.kv.api import KvUnavailable, StaleGuard
from ha_sc.model.kinds import Partition, Spu, Topic
from ha_sc.protocol import StatusReport
from ha_sc.store import GlobalStore, StoreView
from ha_sc.tasks import until_first
from ha_sc.telemetry.metrics_sc import CONTROLLER, ControllerMetrics
from ha_sc.telemetry.tracing_spans import PassSpans

log = logging.getLogger(__name__)

ConnectedSpus = Callable[[], Collection[int] | None]
ECHOES_TRACKED = 1000
"""Writes of a pass up to which the loop waits for their echoes rather than for
``min_interval`` (each change looks at every write not echoed yet)."""
_PACING = PacingSettings()
_NOTHING = PassPlan([], frozenset())
_WINDOW = WriteWindowSettings()


class ControllerLoop:
    def __init__(
        self,
        cache: GlobalStore,
        writer: ActionWriter,
        *,
        connected: ConnectedSpus,
        resync: float = 1.0,
        min_interval: float = 0.05,
        reports: Callable[[], list[StatusReport]] = list,
        wake: asyncio.Event | None = None,
        limits: TopicLimits = DEFAULT_LIMITS,
        settling: Callable[[], bool] = lambda: False,
        unavailable_pause: float = 0.5,
        pacing: PacingSettings = _PACING,
        window: WriteWindowSettings = _WINDOW,
        metrics: ControllerMetrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._cache = cache
        self._settling = settling
        self._wake = wake
        self._writer = writer
        self._connected = connected
        self._resync = resync
        self._min_interval = min_interval
        self._reports = reports
        self._limits = limits
        self._unavailable_pause = unavailable_pause
        self._pacing = pacing
        self._window = WriteWindow(start=window.start, limit=window.limit, slow=window.slow)
        self._batch = window.batch
        self._scopes = ScopeTracker(cache)
        self.passes = 0
        self.full_passes = 0
        """Passes that planned every object (the others planned what changed)."""
        self._wrote_last = False
        self.plan_seconds = 0.0
        """How long the last pass took to plan."""
        self.full_plan_seconds = 0.0
        """How long the last pass over every object took to plan."""

    async def run(self, term: Term) -> None:
        """Reconcile until ``term`` ends; a StaleGuard from the KV ends it too (raised)."""
        self._scopes.reset()  # a term's first pass plans everything
        while term.is_valid():
            started = time.monotonic()
            if self._wake is not None:
                self._wake.clear()  # this pass sees every connection made or lost so far
            epochs = self._epochs()
            planning = time.monotonic()
            planning_ns = time.time_ns()
            actions = await self._plan_pass(term, planning, asyncio.get_running_loop().time())
            self.passes += 1
            spans = (
                PassSpans(term.epoch, self.passes, planning_ns, self.plan_seconds)
                if actions
                else None
            )
            try:
                await apply_actions(
                    self._writer,
                    actions,
                    term,
                    window=self._window,
                    batch=self._batch,
                    parents=_reconciles(spans, actions),
                )
            except StaleGuard as stale:
                self._count_error("fenced")
                if spans is not None:
                    spans.end(stale)
                raise
            except KvUnavailable as unavailable:
                self._count_error("store_unavailable")
                if spans is not None:
                    spans.end(unavailable)
                # level-based: the next pass plans again from whatever did land
                log.warning(
                    "epoch=%d: store unavailable during a pass (%s); next pass in %.1f s",
                    term.epoch,
                    unavailable,
                    self._unavailable_pause,
                )
                await _sleep_unless_lost(term, self._unavailable_pause)
                continue
            except BaseException as ended:
                if spans is not None:
                    spans.end(ended)
                raise
            if spans is not None:
                spans.end()
            if self._metrics is not None:
                self._metrics.passes.labels(CONTROLLER).inc()
                self._metrics.pass_seconds.labels(CONTROLLER).observe(time.monotonic() - started)
            await self._gather_echoes(actions, started, term)
            self._wrote_last = bool(actions)
            spacing = self._pacing.pace * self.plan_seconds
            await asyncio.sleep(max(0.0, started + spacing - time.monotonic()))
            resync = max(self._resync, self._pacing.resync_plans * self.plan_seconds)
            await self._until_changed(epochs, term, resync)

    async def _plan_pass(self, term: Term, planning: float, now: float) -> list[Action]:
        """Plan what changed since the last pass (``ScopeTracker``), or everything;
        ``now``: the event loop's time, by which full passes fall due."""
        connected = self._connected()
        settling = self._settling()
        look = self._scopes.look(
            now=now,
            connected=connected,
            settling=settling,
            reports=self._reports() if connected is not None else (),
        )
        busy = 0.0  # the plan's own time, not the event loop's between its slices
        if look.is_idle:
            plan, scope = _NOTHING, look.scope  # nothing changed since the last pass
            ready = time.monotonic()
        else:
            if look.book is not None and not look.book.is_current(look.reports):
                # after a registration an SPU's report holds 66k replicas: off the loop
                scope, reported = await asyncio.to_thread(look.settle)
            else:
                scope, reported = look.settle()
            steps = _plan(
                spus=self._cache.spus.snapshot(),
                topics=self._cache.topics.snapshot(),
                topics_revision=self._cache.topics.revision,
                partitions=self._cache.partitions.snapshot(),
                partitions_revision=self._cache.partitions.revision,
                connected=connected,
                reported=reported,
                limits=self._limits,
                settling=settling,
                scope=scope,
            )
            ready = time.monotonic()
            plan, busy = await _sliced(steps)
        if scope is None:
            log.debug("epoch=%d: a full pass (%s)", term.epoch, look.why or "offsets moved")
        self.plan_seconds = ready - planning + busy
        if scope is None:
            self.full_plan_seconds = self.plan_seconds
            self.full_passes += 1
        self._scopes.planned(
            plan,
            full=scope is None,
            full_every=max(
                self._pacing.full_resync, self._pacing.resync_plans * self.full_plan_seconds
            ),
            now=now,
        )
        return plan.actions

    async def _gather_echoes(self, actions: list[Action], started: float, term: Term) -> None:
        """After a pass that wrote, wait for its echoes: until the cache shows every
        write, at most ``min_interval`` after the pass started. A pass that wrote nothing
        leaves none, so the next change (a topic create, say) is planned at once. Under
        a burst (this pass wrote, and so did the one before) or for a large pass
        (more than ``ECHOES_TRACKED`` writes), the whole ``min_interval``."""
        if not actions:
            return
        until = started + self._min_interval
        if self._wrote_last or len(actions) > ECHOES_TRACKED:
            await asyncio.sleep(max(0.0, until - time.monotonic()))
            return
        pending: list[Action] = actions
        while (left := until - time.monotonic()) > 0 and term.is_valid():
            epochs = self._epochs()  # before looking: a change after it ends the wait
            pending = not_echoed(pending, self._cache)
            if not pending:
                return
            await self._until_changed(epochs, term, left, wake=False)

    def _count_error(self, reason: str) -> None:
        if self._metrics is None:
            return
        self._metrics.errors.labels(CONTROLLER, reason).inc()
        if reason == "fenced":
            self._metrics.fenced_writes_refused.labels("controllers").inc()

    def _epochs(self) -> tuple[int, int, int]:
        cache = self._cache
        return (cache.spus.epoch, cache.topics.epoch, cache.partitions.epoch)

    async def _until_changed(
        self, epochs: tuple[int, int, int], term: Term, resync: float, *, wake: bool = True
    ) -> None:
        cache = self._cache
        views: tuple[StoreView[Any, Any], ...] = (cache.spus, cache.topics, cache.partitions)
        waits: dict[str, Coroutine[Any, Any, object]] = {
            f"await-{view.kind}": view.wait_for_change(epoch)
            for view, epoch in zip(views, epochs, strict=True)
        }
        waits["await-term-lost"] = term.lost.wait()
        if wake and self._wake is not None:
            waits["await-spu-connections"] = self._wake.wait()
        await until_first(waits, timeout=resync)


async def _sleep_unless_lost(term: Term, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await term.lost.wait()


def _reconciles(spans: PassSpans | None, actions: list[Action]) -> dict[int, Context] | None:
    """Each action's reconcile span (by ``id``), under the controller of the object it
    serves: a partition created for a topic is the topic's reconcile."""
    if spans is None:
        return None
    parents: dict[int, Context] = {}
    for action in actions:
        owner = getattr(action, "owner", None)
        controller, key = (
            (owner.kind, owner.key) if owner is not None else (action.kind.value, action.key)
        )
        verb = type(action).__name__
        parent = spans.reconcile(controller, key, f"{verb} {action.kind.value}/{action.key}")
        if parent is None:
            return None
        parents[id(action)] = parent
    return parents


async def _sliced(steps: Generator[None, None, PassPlan]) -> tuple[PassPlan, float]:
    """Run a plan on the event loop, serving it between its slices; the plan, and the
    seconds spent in it (not in the loop between)."""
    busy = 0.0
    while True:
        started = time.monotonic()
        try:
            next(steps)
        except StopIteration as done:
            plan: PassPlan = done.value
            return plan, busy + time.monotonic() - started
        busy += time.monotonic() - started
        await asyncio.sleep(0)


def _plan(
    *,
    spus: Mapping[str, Spu],
    topics: Mapping[str, Topic],
    topics_revision: int,
    partitions: Mapping[str, Partition],
    partitions_revision: int,
    connected: Collection[int] | None,
    reported: Mapping[str, Mapping[int, ReportedOffsets]] | None,
    limits: TopicLimits,
    settling: bool = False,
    scope: PlanScope | None = None,
) -> Generator[None, None, PassPlan]:
    """One pass's plan, in slices (everything it gets is immutable, or, for ``reported``,
    left alone by the loop until the plan is done)."""
    return plan_steps(
        spus=spus,
        topics=topics,
        partitions=partitions,
        connected=connected,
        reported=reported,
        topics_revision=topics_revision,
        partitions_revision=partitions_revision,
        limits=limits,
        settling=settling,
        scope=scope,
    )
