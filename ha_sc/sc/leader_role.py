"""Leadership of one replica: campaign, catch the cache up, run the leader's duties.

On winning, the replica acts only once its cache has caught up to the store
revision at which it won: it writes a progress mark per kind under its epoch
and waits for its own watch to bring the marks back (``catch_up``). On losing,
every duty stops at once (its tasks are cancelled before anything else runs)
and the replica goes back to being a warm standby: its cache keeps following
the store, ready for the next win.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

from election.api import Candidate
from election.term import Term
from election.threaded import ThreadedCandidate
from ha_sc.api.addresses import ReplicaAddresses
from ha_sc.controllers.loop import ConnectedSpus, ControllerLoop
from ha_sc.controllers.topics.validation import DEFAULT_LIMITS, TopicLimits
from ha_sc.controllers.writer import ActionWriter
from ha_sc.kv.api import KvStore, StaleGuard
from ha_sc.kv.raft import RaftKv
from ha_sc.model.spu import SpuResolution
from ha_sc.protocol import StatusReport
from ha_sc.sc.catch_up import catch_up
from ha_sc.sc.settings import Backend, ScSettings
from ha_sc.sc.spu_grace import grace_over
from ha_sc.sc.tuning import ScTuning
from ha_sc.store import GlobalStore
from ha_sc.telemetry.metrics_sc import ControllerMetrics
from ha_sc.telemetry.tracing_spans import LeadershipWon, leadership_lost

log = logging.getLogger("ha_sc.sc")

ELECTION = "sc"
SYNCED_POLL = 0.005
"""Seconds between two looks at the SPUs synced while the controllers wait for them."""


def online_spus(cache: GlobalStore) -> list[int]:
    """The SPUs stored Online (under the previous leader, right after a win)."""
    return [
        spu.spec.id for spu in cache.spus.objects() if spu.status.resolution is SpuResolution.ONLINE
    ]


def all_synced(were_online: Collection[int], synced: Collection[int]) -> bool:
    """Whether every SPU stored Online has been sent its first message."""
    return set(were_online) <= set(synced)


def make_candidate(
    settings: ScSettings, kv: KvStore, ready: Callable[[], bool] = lambda: True
) -> Candidate:
    """The replica's candidate; on Raft and etcd it campaigns and renews on a thread of its
    own (``ThreadedCandidate``), so a busy event loop cannot cost it the lease. On Raft,
    while ``ready()`` is false (the cache not listed yet) it defers to a replica that is
    ready (election/raft.py)."""
    address = ReplicaAddresses(settings.public_address, settings.private_address).encode()
    timing = settings.election_timing()
    if settings.backend is not Backend.MEMORY:
        log.info(
            "sc lease on %s: ttl %g s, renew deadline %g s, renewed every %g s",
            settings.backend.value,
            timing.lease_ttl,
            timing.renew_deadline,
            timing.renew_interval,
        )
    if settings.backend is Backend.RAFT:
        from election.raft import RaftCandidate

        assert isinstance(kv, RaftKv)
        raft = RaftCandidate(
            kv,
            election=ELECTION,
            name=settings.replica_id,
            address=address,
            timing=timing,
            ready=ready,
        )
        return ThreadedCandidate(raft)
    if settings.backend is Backend.ETCD:
        from election.etcd import EtcdCandidate

        access = settings.etcd_access()
        etcd = EtcdCandidate(
            list(access.endpoints),
            election=ELECTION,
            name=settings.replica_id,
            address=address,
            root=settings.etcd_root,
            timing=timing,
            credentials=access.load(),
        )
        return ThreadedCandidate(etcd)
    from election.memory import MemoryCandidate
    from ha_sc.kv.memory import MemoryKv

    assert isinstance(kv, MemoryKv)
    return MemoryCandidate(kv.leases, election=ELECTION, name=settings.replica_id, address=address)


class LeaderRole:
    """Runs the leader's duties for each term this replica wins."""

    def __init__(
        self,
        candidate: Candidate,
        kv: KvStore,
        cache: GlobalStore,
        *,
        replica: str,
        connected_spus: Callable[[], Collection[int]] | None = None,
        spu_grace: float | None = None,
        reports: Callable[[], list[StatusReport]] = list,
        spus_changed: asyncio.Event | None = None,
        synced_spus: Callable[[int], Collection[int]] | None = None,
        controller_resync: float | None = None,
        limits: TopicLimits = DEFAULT_LIMITS,
        tuning: ScTuning | None = None,
        metrics: ControllerMetrics | None = None,
    ) -> None:
        """``tuning`` gives the controller loop its settings and the grace for SPUs;
        ``spu_grace`` and ``controller_resync`` override those two (tests).
        ``synced_spus(epoch)``: the SPUs sent their first message under ``epoch``; the
        controllers start once every SPU stored Online is among them (at most
        ``spu_link.spus_first`` after the win)."""
        self.candidate = candidate
        self._kv = kv
        self._cache = cache
        self._connected_spus = connected_spus
        self._tuning = tuning = tuning if tuning is not None else ScTuning()
        self._spu_grace = spu_grace if spu_grace is not None else tuning.spu_grace
        self._replica = replica
        self._reports = reports
        self._spus_changed = spus_changed
        self._synced_spus = synced_spus
        self._controller_resync = (
            controller_resync if controller_resync is not None else tuning.controller.resync
        )
        self._limits = limits
        self._metrics = metrics
        self.term: Term | None = None
        """The term whose duties are running, if any."""

    async def run(self) -> None:
        while True:
            term = await self.candidate.wait_won()
            won = LeadershipWon(term.epoch, self._replica)
            try:
                revision = await catch_up(
                    self._kv, self._cache, term, self._replica, self._tuning.catch_up
                )
            except StaleGuard:
                if self._metrics is not None:
                    self._metrics.fenced_writes_refused.labels("catch_up").inc()
                term.end("a newer epoch leads: its guard refused this term's progress mark")
            if not term.is_valid():
                log.info("epoch=%d ended before its cache caught up", term.epoch)
                won.ended_early("the term ended before the cache caught up")
                continue
            won.acting(revision)
            log.info("became leader epoch=%d (cache at revision %d)", term.epoch, revision)
            self.term = term
            self._count_change("won")
            try:
                await self._lead(term)
            finally:
                self.term = None
                self._count_change("lost")
                leadership_lost(term.epoch, self._replica, term.lost_reason or "stale")
            log.info("stepped down from epoch=%d: %s", term.epoch, term.lost_reason or "stale")

    def _count_change(self, change: str) -> None:
        if self._metrics is not None:
            self._metrics.leadership_changes.labels(change).inc()

    def _spu_health(self) -> tuple[ConnectedSpus, Callable[[], bool], Callable[[], None]]:
        """Which SPUs are connected, or None while they may still be coming over to this
        new leader (``spu_grace``, derived from the SPU and SC timings, or until every SPU
        stored Online has connected): judging them earlier would fail every partition
        over at every SC election. The second function says whether that grace is still
        running (a create then waits); the third ends it (the grace's timer: a timer may
        fire a hair before its time, and the pass it wakes must see the grace over)."""
        connected_spus = self._connected_spus
        clock = asyncio.get_running_loop()  # the clock of the timer that ends the grace
        since = clock.time()
        over = False

        def settling() -> bool:
            nonlocal over
            if not over:
                over = grace_over(
                    elapsed=clock.time() - since,
                    grace=self._spu_grace,
                    were_online=online_spus(self._cache),
                    connected=connected_spus() if connected_spus is not None else (),
                )
            return not over

        def connected() -> Collection[int] | None:
            if connected_spus is None or settling():
                return None
            return connected_spus()

        def end() -> None:
            nonlocal over
            over = True

        return connected, settling, end

    async def _until_spus_synced(self, term: Term) -> None:
        """Hold the controllers back until every SPU stored Online has been sent its first
        message under ``term`` (a resync, or a full sync), at most ``spu_link.spus_first``:
        the SPUs come over within milliseconds of the win, and the first pass (plan,
        reports, snapshots: half a second of CPU at 100k partitions) would compete with
        building and sending their resyncs. Nothing is judged meanwhile that the
        controllers would judge: SPU health waits for the grace anyway."""
        synced = self._synced_spus
        wait = self._tuning.spu_link.spus_first
        if synced is None or wait <= 0:
            return
        clock = asyncio.get_running_loop()
        deadline = clock.time() + wait
        while term.is_valid():
            were_online = online_spus(self._cache)
            if all_synced(were_online, synced(term.epoch)):
                return
            left = deadline - clock.time()
            if left <= 0:
                log.info(
                    "epoch=%d: controllers start with spus %s not yet synced",
                    term.epoch,
                    sorted(set(were_online) - set(synced(term.epoch))),
                )
                return
            await asyncio.sleep(min(SYNCED_POLL, left))

    async def _lead(self, term: Term) -> None:
        connected, settling, end_grace = self._spu_health()
        await self._until_spus_synced(term)
        loop = ControllerLoop(
            self._cache,
            ActionWriter(self._kv, self._cache),
            connected=connected,
            settling=settling,
            reports=self._reports,
            wake=self._spus_changed,
            resync=self._controller_resync,
            limits=self._limits,
            min_interval=self._tuning.controller.min_interval,
            unavailable_pause=self._tuning.controller.unavailable_pause,
            pacing=self._tuning.pacing,
            window=self._tuning.write_window,
            metrics=self._metrics,
        )
        duties = asyncio.create_task(loop.run(term), name=f"controllers-epoch-{term.epoch}")
        lost = asyncio.create_task(term.lost.wait(), name=f"term-{term.epoch}-lost")
        # SPU health is judged once the grace ends: a pass then, not at the next resync
        spus_changed = self._spus_changed

        def grace_ran_out() -> None:
            end_grace()
            if spus_changed is not None:
                spus_changed.set()

        grace_over = (
            asyncio.get_running_loop().call_later(self._spu_grace, grace_ran_out)
            if spus_changed is not None
            else None
        )
        try:
            await asyncio.wait({duties, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if grace_over is not None:
                grace_over.cancel()
            duties.cancel()
            lost.cancel()
            results = await asyncio.gather(duties, lost, return_exceptions=True)
        for result in results:
            if isinstance(result, StaleGuard):
                term.end("a write was refused: a newer epoch leads")
            elif isinstance(result, Exception):
                raise result
