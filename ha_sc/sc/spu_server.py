"""The SC's private API: SPUs connect here (the SC never dials an SPU).

Every replica runs one. A connection's first message must be ``register``. A
replica that does not lead answers ``not_leader`` with the leader's private
address (or none) and closes; the leader refuses an SPU id the store does not
know, or (with SPU tokens) whose token is missing or wrong, and serves a known one
on its own task ``spu-conn-<id>`` (see ``SpuConnection``). A newer connection of the
same SPU replaces the older, only once it has proven its id.

Around a failover a registration is held (up to ``hold``) instead of answered at
once: at a replica that has won the lease and is catching up, until it acts; at a
standby, when the SPU says it just lost the leader of an epoch and no newer leader is
known, until one is (or this replica leads). The SPU is then served or sent to the
new leader the moment there is one, rather than sent back to the leader it lost or
told to try again after a backoff.

The controllers read ``connected_ids`` (SPUs with a live connection: registered,
and heard from within the health timeout) and ``last_status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import ssl
import time
from collections import Counter
from collections.abc import Callable, Mapping
from types import MappingProxyType

from election.term import Term
from ha_sc.api.replica_view import ReplicaView
from ha_sc.protocol import (
    MessageDecoder,
    NotLeader,
    ProtocolError,
    Refused,
    Register,
    SpuMessage,
    StatusReport,
    Watch,
    encode_message,
    format_address,
    parse_address,
    spu_message_decoder,
)
from ha_sc.protocol.admission import Admission, RefusalLog
from ha_sc.protocol.tls import peer_spu_id, spu_claim_refusal
from ha_sc.sc.leader_watch import LeaderChanges, serve_watch
from ha_sc.sc.spu_connection import READ_CHUNK, ReceivedStatus, SpuConnection
from ha_sc.sc.spu_grace import FollowTiming, check_follow_timing
from ha_sc.sc.spu_link_settings import AssumedSpuSettings, SpuLinkSettings
from ha_sc.sc.spu_picture import SpuPicture
from ha_sc.sc.spu_spec_sync import ReplicaSpecs, keep_warm
from ha_sc.sc.spu_tokens import SpuTokenFile, SpuTokens
from ha_sc.stream_close import close_stream
from ha_sc.tasks import Supervisor
from ha_sc.telemetry.tracing_spans import status_received
from ha_sc.tls_upgrade import hold, upgrade

log = logging.getLogger("ha_sc.sc.spu")

HOLD_POLL = 0.005
"""Seconds between two looks at the leadership while a registration is held."""
_LINK = SpuLinkSettings()


def won_back(ended: Term, now: Term | None) -> bool:
    """Whether ``now`` is a later, valid term of this replica under ``ended``'s epoch."""
    return now is not None and now is not ended and now.epoch == ended.epoch and now.is_valid()


def still_named(ended: Term, view: ReplicaView) -> bool:
    """Whether the lease, as this replica sees it, still names it at ``ended``'s epoch."""
    leader = view.leader()
    return (
        leader is not None
        and leader.replica_id == view.replica_id
        and (leader.epoch == ended.epoch)
    )


class SpuServer:
    """Accepts SPU connections for one replica; ``start`` binds, ``stop`` closes them all."""

    def __init__(
        self,
        view: ReplicaView,
        address: str,
        *,
        health_timeout: float = _LINK.health_timeout,
        keepalive_interval: float = _LINK.keepalive_interval,
        hold: float = _LINK.hold,
        warm_interval: float = _LINK.warm_interval,
        listed: Callable[[], bool] = lambda: True,
        spu: AssumedSpuSettings | None = None,
        max_connections: int = 1024,
        max_connections_per_peer: int = 16,
        tokens: SpuTokens | SpuTokenFile | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """The timings are the ``spu_link`` group of the settings tree; ``spu`` the SPU
        timings they must fit (default: the SPU's defaults); ``tokens`` the SPU
        registration tokens (None: an SPU's word for its id is taken); ``tls`` the
        port's TLS context (None: plain TCP; a connection is counted against the caps
        before its handshake, which must be done within ``health_timeout``)."""
        if health_timeout <= 0 or keepalive_interval <= 0:
            raise ValueError(
                f"health_timeout ({health_timeout}) and keepalive_interval "
                f"({keepalive_interval}) must be > 0"
            )
        # a hold or keepalive the SPUs cannot wait out fails here
        spu = spu if spu is not None else AssumedSpuSettings()
        check_follow_timing(
            FollowTiming(
                hold=hold, keepalive_interval=keepalive_interval, sc_timeout=spu.sc_timeout
            )
        )
        parse_address(address)  # fail here rather than at start
        self._view = view
        self._bind = address
        self._health_timeout = health_timeout
        self._keepalive = keepalive_interval
        self._hold = hold
        """Longest a registration is held around a failover (below the SPU's 2 s wait
        for an answer)."""
        self._warm_interval = warm_interval
        self._listed = listed
        self._admission = Admission(max_connections, max_connections_per_peer)
        self._refusals = RefusalLog()
        self._tokens = tokens
        self._tls = tls
        self._supervisor = Supervisor()
        self._server: asyncio.Server | None = None
        self._address: str | None = None
        self._connections: dict[int, SpuConnection] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._statuses: dict[int, SpuPicture] = {}
        self._replica_specs = ReplicaSpecs(view.cache.topics)
        self._leader_changes = LeaderChanges(view.leader)
        self._accepted = itertools.count(1)
        self._served = itertools.count(1)
        self.pushes: Counter[str] = Counter()
        """Messages sent to SPUs by kind (full_sync, delta, keepalive)."""
        self.connections_changed = asyncio.Event()
        """Set when an SPU's connection is registered or ends (the controllers wake on it)."""

    @property
    def address(self) -> str:
        """``host:port`` the server listens on (the bound port when started with port 0)."""
        if self._address is None:
            raise RuntimeError("the spu server is not started")
        return self._address

    @property
    def health_timeout(self) -> float:
        return self._health_timeout

    def specs_warm(self) -> bool:
        """Whether every SPU's set of replica specs has been built since the cache was
        listed (``keep_warm``): a resync then costs only what changed."""
        return self._replica_specs.warm

    def connected_ids(self) -> set[int]:
        """SPUs with a live, registered connection to this replica."""
        return set(self._connections)

    def synced_ids(self, epoch: int) -> set[int]:
        """SPUs connected under ``epoch`` whose first message of the session (a full
        sync or a resync) has been sent."""
        return {
            spu_id
            for spu_id, connection in self._connections.items()
            if connection.epoch == epoch and connection.first_sent
        }

    def last_status(self, spu_id: int) -> ReceivedStatus | None:
        """The last status report of ``spu_id`` and its monotonic arrival time, if any."""
        picture = self._statuses.get(spu_id)
        return None if picture is None else picture.received()

    def connected_reports(self) -> list[StatusReport]:
        """The last report of every SPU connected now (each an SPU's whole picture)."""
        return [
            p.received().report
            for spu_id, p in self._statuses.items()
            if spu_id in self._connections
        ]

    def statuses(self) -> Mapping[int, ReceivedStatus]:
        """The last status report of every SPU heard from."""
        return MappingProxyType({spu_id: p.received() for spu_id, p in self._statuses.items()})

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the spu server is already started")
        host, port = parse_address(self._bind)
        self._server = await asyncio.start_server(
            self._accept,
            host,
            port,
            reuse_address=True,
        )
        self._supervisor.start(
            "replica-specs-warm",
            keep_warm(
                self._replica_specs,
                self._view.cache,
                interval=self._warm_interval,
                listed=self._listed,
            ),
            critical=False,
        )
        self._supervisor.start("leader-changes", self._leader_changes.run())
        bound_host, bound_port = self._server.sockets[0].getsockname()[:2]
        self._address = format_address(bound_host, bound_port)
        log.info("spu server of %s listening on %s", self._view.replica_id, self._address)

    async def stop(self) -> None:
        """Stop accepting, close every SPU connection and wait for their tasks."""
        server = self._server
        if server is None:
            return
        server.close()
        await self._supervisor.stop()
        await server.wait_closed()
        log.info("spu server of %s stopped", self._view.replica_id)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._tls is not None:
            hold(writer)  # its ClientHello waits until the connection is counted
        peername = writer.get_extra_info("peername")
        peer = format_address(*peername[:2]) if peername else "unknown peer"
        host = str(peername[0]) if peername else peer
        refused = self._admission.refusal(host)
        if refused is not None:
            if self._refusals.due(host, time.monotonic()):
                log.warning(
                    "spu server: refused a connection from %s: %s (further refusals of it "
                    "are not logged for %.0f s)",
                    host,
                    refused,
                    self._refusals.every,
                )
            writer.transport.abort()
            return
        release = functools.partial(self._admission.closed, host)
        name = f"spu-register-{next(self._accepted)}"
        try:
            self._supervisor.start(
                name, self._register(reader, writer, peer, release), critical=False
            )
        except RuntimeError:  # stopping
            release()
            writer.close()

    async def _register(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
        release: Callable[[], None],
    ) -> None:
        """Answer the first message; hand a served SPU over to its own task (which
        calls ``release`` when it ends, as this does if it keeps the connection)."""
        handed_over = False
        try:
            if self._tls is not None:
                failed = await upgrade(writer, self._tls, self._health_timeout)
                if failed is not None:
                    log.debug("spu server: connection from %s: %s", peer, failed)
                    return
            decoder = spu_message_decoder()
            received = await self._first_messages(reader, decoder, peer)
            if received is None:
                return
            first, rest = received
            if isinstance(first, Watch):
                if await self._watch_refused(first, writer, peer):
                    return
                reason = await serve_watch(first.spu_id, self._leader_changes, reader, writer, peer)
                log.debug("watch of spu %d from %s ended: %s", first.spu_id, peer, reason)
                return
            handed_over = await self._answer(first, reader, writer, decoder, rest, peer, release)
        finally:
            if not handed_over:
                release()
                await close_stream(writer)

    async def _first_messages(
        self, reader: asyncio.StreamReader, decoder: MessageDecoder[SpuMessage], peer: str
    ) -> tuple[Register | Watch, list[SpuMessage]] | None:
        """The register (or watch) message and any that arrived with it; None if there
        is none."""
        try:
            async with asyncio.timeout(self._health_timeout):
                while True:
                    data = await reader.read(READ_CHUNK)
                    if not data:
                        raise ConnectionError("closed by the peer")  # noqa: TRY301
                    messages = decoder.feed(data)
                    if messages:
                        break
        except TimeoutError:
            reason = f"no register message within {self._health_timeout:g} s"
        except ProtocolError as exc:
            reason = f"malformed message: {exc}"
        except ConnectionError as exc:
            reason = f"connection lost: {exc}"
        else:
            first, *rest = messages
            if isinstance(first, Register | Watch):
                return first, rest
            reason = f"expected a register message first, got {first.type}"
        log.warning("spu connection from %s closed before registering: %s", peer, reason)
        return None

    async def _watch_refused(self, watch: Watch, writer: asyncio.StreamWriter, peer: str) -> bool:
        """With SPU tokens, refuse (and log) a watch that does not prove its SPU id."""
        reason = None if self._tokens is None else self._tokens.refusal(watch.spu_id, watch.token)
        if reason is None:
            return False
        leader = self._view.leader()
        await self._send(writer, Refused(epoch=leader.epoch if leader else 0, reason=reason))
        log.warning("refused the watch of spu %d from %s: %s", watch.spu_id, peer, reason)
        return True

    async def _answer(
        self,
        register: Register,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        decoder: MessageDecoder[SpuMessage],
        received: list[SpuMessage],
        peer: str,
        release: Callable[[], None],
    ) -> bool:
        """Redirect, refuse or serve the SPU; True once its connection task owns ``writer``."""
        spu_id = register.spu_id
        term = await self._held(register, peer)
        if term is None or not term.is_valid():
            leader = self._view.leader()
            private = leader.addresses.private if leader is not None else ""
            epoch = leader.epoch if leader is not None else 0
            await self._send(writer, NotLeader(epoch=epoch, leader_private=private or None))
            log.info(
                "spu %d from %s: %s is not the leader; sent it to %s",
                spu_id,
                peer,
                self._view.replica_id,
                private or "no known leader",
            )
            return False
        reason = None if self._tokens is None else self._tokens.refusal(spu_id, register.token)
        if reason is None and self._tls is not None and self._tls.verify_mode == ssl.CERT_REQUIRED:
            proven = peer_spu_id(writer.get_extra_info("peercert"))
            reason = spu_claim_refusal(spu_id, proven)
        if reason is None and not any(
            spu.spec.id == spu_id for spu in self._view.cache.spus.objects()
        ):
            reason = f"spu {spu_id} is not registered with the cluster"
        if reason is not None:  # before any other connection of this id is touched
            await self._send(writer, Refused(epoch=term.epoch, reason=reason))
            log.warning("refused spu %d from %s: %s", spu_id, peer, reason)
            return False
        while (old := self._connections.get(spu_id)) is not None:
            old.close(f"replaced by a new connection from {peer}")
            await asyncio.wait({self._tasks[spu_id]})
        if not term.is_valid():
            return False
        connection = SpuConnection(
            spu_id,
            reader=reader,
            writer=writer,
            decoder=decoder,
            received=received,
            term=term,
            cache=self._view.cache,
            on_status=self._record_status,
            sc_members=self._view.replica_privates,
            replica_specs=self._replica_specs,
            peer=peer,
            health_timeout=self._health_timeout,
            keepalive_interval=self._keepalive,
            pushes=self.pushes,
            fetch_keys=self._fetch_keys,
            cursor=register.cursor,
            won_back=self._won_back,
        )
        # a name of its own: the task of the connection it replaces has ended, but the
        # supervisor may not have let go of that task's name yet
        task = self._supervisor.start(
            f"spu-conn-{spu_id}-{next(self._served)}", self._serve(connection), critical=False
        )
        task.add_done_callback(lambda _: release())
        self._connections[spu_id] = connection
        self._tasks[spu_id] = task
        self.connections_changed.set()
        return True

    def _fetch_keys(self) -> dict[int, str] | None:
        """Every SPU's replica-fetch key, when SPUs prove their ids; None otherwise."""
        return None if self._tokens is None else self._tokens.current().fetch_keys

    async def _held(self, register: Register, peer: str) -> Term | None:
        """This replica's term, once the registration need not be held any longer."""
        term = self._view.term()
        if (term is not None and term.is_valid()) or not self._worth_holding(register):
            return term
        log.info(
            "spu %d from %s: held for up to %g s until a leader acts (it left epoch %s)",
            register.spu_id,
            peer,
            self._hold,
            register.left_epoch,
        )
        deadline = time.monotonic() + self._hold
        while time.monotonic() < deadline:
            await asyncio.sleep(HOLD_POLL)
            term = self._view.term()
            if (term is not None and term.is_valid()) or not self._worth_holding(register):
                break
        return term

    async def _won_back(self, ended: Term) -> Term | None:
        """The term this replica won back under ``ended``'s epoch, waited for up to
        ``hold`` while the lease still names it at that epoch (no one else can have led
        meanwhile: epochs only grow); None as soon as that is no longer so."""
        deadline = time.monotonic() + self._hold
        while True:
            term = self._view.term()
            if won_back(ended, term):
                return term
            if time.monotonic() >= deadline or not still_named(ended, self._view):
                return None
            await asyncio.sleep(HOLD_POLL)

    def _worth_holding(self, register: Register) -> bool:
        leader = self._view.leader()
        if leader is not None and leader.replica_id == self._view.replica_id:
            return True  # won, catching up: it acts in a moment
        left = register.left_epoch
        return left is not None and (leader is None or leader.epoch <= left)

    async def _serve(self, connection: SpuConnection) -> None:
        reason = "failed"
        level = logging.WARNING
        try:
            reason = await connection.run()
        except asyncio.CancelledError:
            reason, level = "the spu server is stopping", logging.INFO
            raise
        except Exception as exc:
            reason = f"failed: {exc!r}"  # the supervisor logs the traceback
            raise
        finally:
            if self._connections.get(connection.spu_id) is connection:
                del self._connections[connection.spu_id]
                del self._tasks[connection.spu_id]
                self.connections_changed.set()
            log.log(level, "spu %d offline: %s", connection.spu_id, reason)

    def _record_status(self, status: ReceivedStatus) -> None:
        """Keep the SPU's whole picture: a full report replaces it, a partial one amends it."""
        report = status.report
        if report.trace:
            status_received(report.spu_id, report.trace, [r.partition for r in report.replicas])
        earlier = self._statuses.get(report.spu_id)
        if earlier is None:
            self._statuses[report.spu_id] = SpuPicture(status)
        else:
            earlier.amend(status)

    async def _send(self, writer: asyncio.StreamWriter, message: NotLeader | Refused) -> None:
        """Send a last message before closing; the peer may already be gone."""
        writer.write(encode_message(message))
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(self._health_timeout):
                await writer.drain()


__all__ = ["ReceivedStatus", "SpuServer"]
