"""One SC replica process: the KV, the warm cache, the election, and the leader's duties.

Every replica runs the dispatchers (its cache is a warm mirror of the store) and a
candidate. The one that wins runs the controllers; losing stops them at once and
the replica stays on as a warm standby (it does not exit). SIGTERM stops the
leader's duties first, then hands the lease over, then closes the store.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Awaitable
from typing import Any

from election.api import Candidate
from election.term import Term
from ha_sc.api import ApiServer
from ha_sc.api.access import ApiTokens, read_api_tokens
from ha_sc.api.addresses import ReplicaAddresses
from ha_sc.api.replica_view import KnownLeader, RaftGroup
from ha_sc.awake import watch_loop
from ha_sc.heap import keep_collections_short
from ha_sc.kv.api import KvStore
from ha_sc.kv.raft import RaftKv
from ha_sc.kv.raft_membership import MembershipError
from ha_sc.model.kinds import Kind
from ha_sc.protocol.tls import server_context
from ha_sc.sc.kv_backend import open_kv, store_ready
from ha_sc.sc.leader_role import ELECTION, LeaderRole, make_candidate
from ha_sc.sc.replica_metrics import replica_metrics
from ha_sc.sc.settings import ScSettings
from ha_sc.sc.spu_server import SpuServer
from ha_sc.sc.spu_tokens import SpuTokenFile
from ha_sc.store import Dispatcher, GlobalStore, start_dispatchers
from ha_sc.tasks import Supervisor

log = logging.getLogger("ha_sc.sc")


def status_line(settings: ScSettings, kv: KvStore, cache: GlobalStore, candidate: Candidate) -> str:
    counts = " ".join(f"{kind.value}={len(cache.view(kind))}" for kind in Kind)
    parts = [f"sc {settings.replica_id}", f"backend={settings.backend.value}"]
    term = candidate.term
    leader = candidate.leader()
    if term is not None:
        parts.append(f"role=leader epoch={term.epoch}")
    else:
        seen = "none" if leader is None else f"{leader.candidate}@{leader.epoch}"
        parts.append(f"role=standby leader={seen}")
    if isinstance(kv, RaftKv):
        parts.append(f"raft_leader={kv.raft_leader()}")
    parts.append(f"revision={cache.revision}")
    return " ".join(parts) + " " + counts


class ScReplica:
    """Runs until SIGTERM/SIGINT (exit 0) or a fatal task failure (exit 1).

    It is also the ReplicaView its servers are given.
    """

    def __init__(self, settings: ScSettings) -> None:
        self.settings = settings
        self.cache = GlobalStore()
        self.supervisor = Supervisor()
        self._stop = asyncio.Event()
        self._kv: KvStore | None = None
        self._candidate: Candidate | None = None
        self._role: LeaderRole | None = None

    # ReplicaView

    @property
    def replica_id(self) -> str:
        return self.settings.replica_id

    @property
    def kv(self) -> KvStore:
        assert self._kv is not None, "the replica has not opened its store yet"
        return self._kv

    def term(self) -> Term | None:
        term = None if self._role is None else self._role.term
        return term if term is not None and term.is_valid() else None

    def leader(self) -> KnownLeader | None:
        seen = None if self._candidate is None else self._candidate.leader()
        if seen is None:
            return None
        return KnownLeader(seen.candidate, seen.epoch, ReplicaAddresses.decode(seen.address))

    def replica_privates(self) -> list[str]:
        addresses = [self.settings.private_address]
        known = self.leader()
        if known is not None:
            addresses.append(known.addresses.private)
        if isinstance(self._kv, RaftKv):
            group = self._kv.members()
            for enlisted in self._kv.leases.enlisted(ELECTION):
                if enlisted.raft_address in group:  # removed replicas stay enlisted
                    addresses.append(ReplicaAddresses.decode(enlisted.address).private)
        return list(dict.fromkeys(a for a in addresses if a))

    def raft_group(self) -> RaftGroup | None:
        return self._kv if isinstance(self._kv, RaftKv) else None

    async def step_down(self) -> None:
        candidate = self._candidate
        if candidate is not None and self.term() is not None:
            log.info("sc %s stepping down on request", self.replica_id)
            await candidate.resign()  # the term ends first, then the lease is handed over
        await self._hand_over_raft()

    async def _hand_over_raft(self, timeout: float = 5.0) -> None:
        """Hand Raft leadership, if this node holds it, to the SC successor's node: its
        first writes (progress marks) then commit without waiting for a Raft election."""
        kv = self._kv
        if not isinstance(kv, RaftKv) or not kv.is_raft_leader():
            return
        successor = self.leader()
        to = None
        if successor is not None and successor.replica_id != self.replica_id:
            to = next(
                (
                    e.raft_address
                    for e in kv.leases.enlisted(ELECTION)
                    if e.candidate == successor.replica_id
                ),
                None,
            )
        await kv.hand_over_leadership(to, timeout=timeout)
        log.info("sc %s handed raft leadership to %s", self.replica_id, kv.raft_leader())

    def _spu_tokens(self) -> SpuTokenFile | None:
        path = self.settings.spu_tokens
        if path is None:
            log.warning(
                "sc %s: SPU registration unauthenticated (no --spu-tokens): an SPU's word "
                "for its id is taken",
                self.replica_id,
            )
            return None
        tokens = SpuTokenFile(path)
        log.info(
            "sc %s: SPU registration needs a token; %d SPUs have one",
            self.replica_id,
            len(tokens.current().tokens),
        )
        return tokens

    def _tls(self) -> tuple[ssl.SSLContext | None, ssl.SSLContext | None]:
        """The public API's and the private port's TLS contexts (None: plain TCP)."""
        files = self.settings.tls
        if files is None:
            log.warning(
                "sc %s: public API and private port unencrypted (no --tls-cert): anyone on "
                "the path reads and alters their traffic",
                self.replica_id,
            )
            return None, None
        log.info(
            "sc %s: TLS on the public API and the private port%s",
            self.replica_id,
            "; SPUs need a certificate signed by the CA" if files.client_auth else "",
        )
        public = server_context(files.model_copy(update={"client_auth": False}))
        return public, server_context(files)

    def _api_tokens(self) -> ApiTokens | None:
        path = self.settings.api_tokens
        if path is None:
            log.warning(
                "sc %s: public API unauthenticated (no --api-tokens): anyone who reaches "
                "it may read and write",
                self.replica_id,
            )
            return None
        tokens = read_api_tokens(path)
        log.info(
            "sc %s: public API needs a bearer token (%d known); /healthz, /readyz and "
            "/metrics stay open",
            self.replica_id,
            len(tokens.roles),
        )
        return tokens

    # running

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        kv = self._kv = open_kv(self.settings)
        dispatchers: dict[Kind, Dispatcher[Any, Any]] = {}

        def cache_listed() -> bool:
            """Every dispatcher has listed (also read on the election's thread: the dict is
            copied in one step, never iterated while the event loop may fill it)."""
            started = tuple(dispatchers.values())
            return bool(started) and all(d.ready.is_set() for d in started)

        tuning = self.settings.tuning
        for line in tuning.summary():
            log.info("sc %s settings: %s", self.replica_id, line)
        public_tls, private_tls = self._tls()
        spus = SpuServer(
            self,
            self.settings.private_address,
            tls=private_tls,
            health_timeout=tuning.spu_link.health_timeout,
            keepalive_interval=tuning.spu_link.keepalive_interval,
            hold=tuning.spu_link.hold,
            warm_interval=tuning.spu_link.warm_interval,
            listed=cache_listed,
            spu=tuning.spu,
            max_connections=tuning.listeners.spu_max_connections,
            max_connections_per_peer=tuning.listeners.spu_max_connections_per_peer,
            tokens=self._spu_tokens(),
        )
        candidate = self._candidate = make_candidate(
            self.settings, kv, ready=lambda: cache_listed() and spus.specs_warm()
        )
        metrics = replica_metrics(
            self.settings,
            self.cache,
            kv=lambda: self._kv,
            candidate=lambda: self._candidate,
            term=self.term,
            connected_spus=spus.connected_ids,
            pushes=spus.pushes,
        )
        role = self._role = LeaderRole(
            candidate,
            kv,
            self.cache,
            replica=self.settings.replica_id,
            connected_spus=spus.connected_ids,
            reports=spus.connected_reports,
            spus_changed=spus.connections_changed,
            synced_spus=spus.synced_ids,
            limits=self.settings.topic_limits(),
            tuning=tuning,
            metrics=metrics.controllers,
        )
        api = ApiServer(
            self,
            self.settings.public_address,
            ready=cache_listed,
            limits=self.settings.topic_limits(),
            metrics=metrics,
            max_body=tuning.listeners.api_max_body_bytes,
            max_requests_per_peer=tuning.listeners.api_max_requests_per_peer,
            tokens=self._api_tokens(),
            body_timeout=tuning.listeners.api_body_timeout,
            connection_limits=tuning.listeners.api_connections(),
            tls=public_tls,
        )
        try:
            for listener, start in (("public API", api.start), ("private (SPU) port", spus.start)):
                try:
                    await start()
                except OSError as cannot:
                    log.critical("sc %s cannot serve its %s: %s", self.replica_id, listener, cannot)
                    return 1
            log.info(
                "sc %s public API on %s, SPUs connect on %s",
                self.settings.replica_id,
                api.address,
                spus.address,
            )
            if not await self._until_stopped(store_ready(kv, self.replica_id)):
                log.info("sc %s stopping on signal before its store was ready", self.replica_id)
                return 0
            dispatchers.update(start_dispatchers(self.cache, kv, self.supervisor))
            self.supervisor.start("election", candidate.run())
            leading = self.supervisor.start("leader-role", role.run())
            self.supervisor.start("status-reporter", self._report(kv, candidate))
            self.supervisor.start("loop-monitor", watch_loop())
            self.supervisor.start("heap-freezer", keep_collections_short())
            failed = asyncio.create_task(self.supervisor.failed.wait(), name="await-failure")
            await self._until_stopped(failed)
            if self.supervisor.failed.is_set():
                log.critical(
                    "sc %s stopping: %s", self.settings.replica_id, self.supervisor.failure
                )
                return 1
            log.info("sc %s stopping on signal", self.settings.replica_id)
            leading.cancel()  # guarded work first
            await asyncio.gather(leading, return_exceptions=True)
            await candidate.resign()  # then the lease: a standby takes over at once
            try:  # and Raft leadership, so the successor's first writes commit at once
                await self._hand_over_raft(timeout=1.0)
            except MembershipError as slow:
                log.warning(
                    "sc %s: %s; the group elects a Raft leader itself", self.replica_id, slow
                )
            return 0
        finally:
            await spus.stop()
            await api.stop()
            await self.supervisor.stop()
            await kv.close()

    async def _until_stopped(self, work: Awaitable[object]) -> bool:
        """Await ``work`` unless a stop signal comes first (then cancel it): did it finish?"""
        task = asyncio.ensure_future(work)
        stop = asyncio.create_task(self._stop.wait(), name="await-stop")
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task.done() and not task.cancelled():
            task.result()  # a failure of the work itself propagates
            return True
        return False

    async def _report(self, kv: KvStore, candidate: Candidate) -> None:
        while True:
            log.info("%s", status_line(self.settings, kv, self.cache, candidate))
            await asyncio.sleep(self.settings.status_interval)
