"""The SPU's link to the SC leader: find it, register, follow its specs, report status.

The SPU dials the SC (never the other way round). It tries the SC replicas in
turn; a replica that does not lead names the leader, and the SPU goes there
straight away (once; a redirect from a redirect waits its turn like any failed
attempt). Every failed attempt waits before the next, 0.05 s doubling to 0.2 s
(SC replicas are few and near: a short wait finds a new leader soon after it wins);
a session that was served resets the wait. After losing a leader the SPU says so
in its next ``register`` (``left_epoch``), so a standby that knows of no newer leader
holds it until there is one instead of naming the lost one. Every spec message passes the
epoch fence first: a message from a deposed leader is refused, counted, and
ends the session. While connected the SPU sends its status every
``status_interval``; silence from the SC past ``sc_timeout`` (it sends a
keepalive every 0.5 s; timed in awake time, ``ha_sc.awake``, so a stall of the SPU's
own loop does not count) ends the session, so a paused or cut-off leader is left
behind. What the SPU holds stays as it is until the next full sync. A replica
given as ``ADDR@DIAL`` is dialled at DIAL whenever ADDR is meant, redirects
included. The fence's decisions are also appended to ``control-events.jsonl`` in
the data dir (``control_events.py``), for audits and chaos runs.
``not_leader`` and ``refused`` pass no fence: they change nothing the SPU holds.

Besides its session the SPU keeps a watch connection to every SC replica it knows
(``ha_sc/sc/leader_watch.py``): the replica sends a ``leader_notice`` as soon as it
sees a newer leader, and the SPU, if the notice's epoch is above any it has seen
(``follow.py``), ends its session at once and registers with the named leader
without a backoff; a notice below the fence is refused and recorded like a stale
message. So SPUs leave a frozen or cut-off leader at the new leader's win, not
after ``sc_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from opentelemetry.trace import SpanContext

from ha_sc import awake
from ha_sc.protocol import (
    Delta,
    FullSync,
    LeaderNotice,
    NotLeader,
    ProtocolError,
    Refused,
    Register,
    ScMessage,
    StatusReport,
    Watch,
    encode_message,
    parse_address,
    sc_message_decoder,
)
from ha_sc.secret_file import read_secret
from ha_sc.spu.control_events import CONTROL_EVENTS_FILE, ControlEventLog
from ha_sc.spu.control_state import ControlState
from ha_sc.spu.follow import MoveTo, RefuseStale, on_leader_notice
from ha_sc.spu.replica_status import OffsetSource, StatusReporter, report_frame
from ha_sc.spu.settings import SpuSettings
from ha_sc.spu.tls import spu_tls
from ha_sc.stream_close import close_stream
from ha_sc.tasks import Supervisor, first_of
from ha_sc.telemetry.tracing_context import carrier
from ha_sc.telemetry.tracing_spans import refused, spu_apply, spu_status_report

log = logging.getLogger("ha_sc.spu")

READ_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """How one connection to an SC replica ended."""

    reason: str
    served: bool = False
    """A full sync was applied: this replica led."""
    redirect: str | None = None
    """The leader's private address, when the replica said it does not lead."""


class _Channel:
    """Framed messages over one TCP connection to an SC replica."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = timeout
        self._decoder = sc_message_decoder()
        self._pending: list[ScMessage] = []

    async def send(self, message: Register | Watch | StatusReport) -> None:
        """Send; TimeoutError if the SC does not take it within the timeout."""
        await self.send_frame(encode_message(message))

    async def send_frame(self, frame: bytes) -> None:
        """Send a message already framed (``send`` does the framing)."""
        self._writer.write(frame)
        await awake.within(self._timeout, self._writer.drain)

    async def receive(self) -> ScMessage:
        """The next message; TimeoutError after ``timeout`` s of silence (awake time:
        a stall of this SPU's own loop is not the SC's)."""
        await awake.within(self._timeout, self._fill)
        return self._pending.pop(0)

    async def _fill(self) -> None:
        while not self._pending:
            data = await self._reader.read(READ_CHUNK)
            if not data:
                raise ConnectionError("connection closed by the sc")
            self._pending.extend(self._decoder.feed(data))


class ScLink:
    """Keeps the SPU following the SC leader; run it as the task ``sc-link``."""

    def __init__(self, settings: SpuSettings, state: ControlState, offsets: OffsetSource) -> None:
        self._settings = settings
        self._state = state
        self._offsets = offsets
        self._token = None if settings.token_file is None else read_secret(settings.token_file)
        tls = spu_tls(settings.tls)
        self._tls = None if tls is None else tls.dialer
        self.sessions = 0
        """Connections that reached an SC replica (registered)."""
        given = [split_dial(spec) for spec in settings.sc_addresses]
        self.addresses = [address for address, _ in given]
        """SC replicas' private addresses this SPU tries in turn: those it was given,
        then those the leaders told it of."""
        self._dial = {address: dial for address, dial in given if dial != address}
        """Replicas given as ``ADDR@DIAL``: reached at DIAL whenever ADDR is meant."""
        self.events = ControlEventLog(settings.data_dir / CONTROL_EVENTS_FILE, settings.spu_id)
        self._left_epoch: int | None = None
        """The epoch of the leader whose session just ended, until another serves this SPU."""
        """The fence's decisions, appended to ``control-events.jsonl``."""
        self._watches = Supervisor()
        self._watched: set[str] = set()
        self._watch_refusals: set[str] = set()
        """Replicas whose refusal of a watch was logged (and not accepted since)."""
        self._session_with: str | None = None
        """The replica of the session under way (being answered or served), if any."""
        self._moved_for = 0
        """The highest epoch of a leader notice this SPU moved for."""
        self._move_to: str | None = None
        self._move = asyncio.Event()
        """Set when a leader notice says to move to ``_move_to`` now."""
        self.moves = 0
        """Sessions ended at once for a leader notice."""
        self._applied_trace: SpanContext | None = None
        """The span of the last traced message applied, until a status report follows it."""

    async def run(self) -> None:
        """Connect, follow, reconnect; until cancelled."""
        try:
            await self._run()
        finally:
            await self._watches.stop()

    async def _run(self) -> None:
        settings = self._settings
        addresses = self.addresses
        spu_id = settings.spu_id
        delay = settings.backoff_initial
        turn = 0
        redirect: str | None = None
        while True:
            self._watch_every_replica()
            if self._move.is_set() and self._move_to is not None:
                address, redirected = self._move_to, True
                self._move.clear()
                delay = settings.backoff_initial
            elif redirect is not None:
                address, redirected = redirect, True
            else:
                address, redirected = addresses[turn % len(addresses)], False
                turn += 1
            redirect = None
            end = await self._session_unless_moved(address)
            if end.served:
                delay = settings.backoff_initial
                # the leader is gone (or deposed): say so where it registers next
                self._left_epoch = self._state.highest_epoch
            if self._move.is_set():
                log.info("spu %d: sc %s: %s; moving now", spu_id, address, end.reason)
                continue
            if end.redirect is not None:
                redirect = end.redirect  # the leader-elect may name itself: retry it after a wait
                if redirect != address and not redirected:
                    log.info("spu %d: sc %s: %s; trying %s", spu_id, address, end.reason, redirect)
                    continue
            log.info(
                "spu %d: sc %s: %s; next attempt in %.2f s", spu_id, address, end.reason, delay
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._move.wait(), delay)  # a notice cuts the wait
            delay = min(delay * 2, settings.backoff_max)

    async def _session_unless_moved(self, address: str) -> SessionEnd:
        """The session with ``address``, ended at once when a leader notice says to move."""
        self._session_with = address
        session = asyncio.create_task(self._session(address), name="sc-link-session")
        moved = asyncio.create_task(self._move.wait(), name="sc-link-move")
        try:
            await asyncio.wait({session, moved}, return_when=asyncio.FIRST_COMPLETED)
            if session.done():
                return session.result()
            served = self._state.sc_address is not None
            session.cancel()
            await asyncio.gather(session, return_exceptions=True)
            self.moves += 1
            return SessionEnd(
                f"a leader of epoch {self._moved_for} won at {self._move_to}", served=served
            )
        finally:
            self._session_with = None
            for task in (session, moved):
                task.cancel()
            await asyncio.gather(session, moved, return_exceptions=True)

    def _watch_every_replica(self) -> None:
        for address in self.addresses:
            if address not in self._watched:
                self._watched.add(address)
                self._watches.start(f"sc-watch-{address}", self._watch(address), critical=False)

    async def _watch(self, address: str) -> None:
        """Keep a watch connection to ``address``; act on every leader notice it sends."""
        settings = self._settings
        while True:
            try:
                async with asyncio.timeout(settings.connect_timeout):
                    reader, writer = await self._connect(address)
            except (TimeoutError, OSError):
                await asyncio.sleep(settings.backoff_max)
                continue
            try:
                channel = _Channel(reader, writer, settings.connect_timeout)
                await channel.send(Watch(spu_id=settings.spu_id, token=self._token))
                while True:
                    try:
                        message = await channel.receive()
                    except TimeoutError:
                        continue  # a watch is silent until a leader wins
                    if isinstance(message, Refused):
                        self._watch_refused(address, message.reason)
                    if not isinstance(message, LeaderNotice):
                        break
                    self._watch_refusals.discard(address)
                    self._on_notice(address, message)
            except (ConnectionError, ProtocolError, TimeoutError):
                pass
            finally:
                await close_stream(writer)
            await asyncio.sleep(settings.backoff_max)

    def _watch_refused(self, address: str, reason: str) -> None:
        """Log a refused watch once per replica until it is accepted again."""
        if address not in self._watch_refusals:
            self._watch_refusals.add(address)
            log.warning(
                "spu %d: sc %s refused its watch connection: %s",
                self._settings.spu_id,
                address,
                reason,
            )

    def _on_notice(self, address: str, notice: LeaderNotice) -> None:
        spu_id = self._settings.spu_id
        decision = on_leader_notice(
            epoch=notice.epoch,
            leader_private=notice.leader_private,
            highest_epoch=self._state.highest_epoch,
            moved_for=self._moved_for,
            session_with=self._session_with,
        )
        if isinstance(decision, RefuseStale):
            self.events.record(
                epoch=notice.epoch,
                accepted=False,
                message=notice.type,
                highest=self._state.highest_epoch,
            )
            log.info(
                "spu %d: refused a leader notice from sc %s: %s", spu_id, address, decision.reason
            )
        elif isinstance(decision, MoveTo):
            log.info(
                "spu %d: sc %s tells of a leader of epoch %d at %s: moving there now",
                spu_id,
                address,
                decision.epoch,
                decision.leader_private,
            )
            self._moved_for = decision.epoch
            self._move_to = decision.leader_private
            self._learn([decision.leader_private])
            self._move.set()

    async def _connect(self, address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to the replica at ``address`` (through its dial address if given
        one); over TLS, its certificate must name ``address``'s host."""
        host, port = parse_address(self._dial.get(address, address))
        if self._tls is None:
            return await asyncio.open_connection(host, port)
        named, _ = parse_address(address)
        return await asyncio.open_connection(host, port, ssl=self._tls, server_hostname=named)

    async def _session(self, address: str) -> SessionEnd:
        try:
            async with asyncio.timeout(self._settings.connect_timeout):
                reader, writer = await self._connect(address)
        except TimeoutError:
            return SessionEnd(f"no connection within {self._settings.connect_timeout:g} s")
        except OSError as exc:
            return SessionEnd(f"cannot connect: {exc}")
        self.sessions += 1
        try:
            return await self._follow(address, _Channel(reader, writer, self._settings.sc_timeout))
        finally:
            self._state.disconnected()
            await close_stream(writer)

    async def _follow(self, address: str, channel: _Channel) -> SessionEnd:
        cursor = self._state.cursor
        try:
            await channel.send(
                Register(
                    spu_id=self._settings.spu_id,
                    left_epoch=self._left_epoch,
                    token=self._token,
                    cursor=cursor,
                )
            )
            first = await channel.receive()
        except TimeoutError:
            return SessionEnd(f"no answer within {self._settings.sc_timeout:g} s")
        except (ConnectionError, ProtocolError) as exc:
            return SessionEnd(f"no answer: {exc}")
        if isinstance(first, NotLeader):
            return SessionEnd("not the leader", redirect=first.leader_private)
        if isinstance(first, Refused):
            log.error(
                "spu %d: sc %s refused this spu at epoch %d: %s",
                self._settings.spu_id,
                address,
                first.epoch,
                first.reason,
            )
            return SessionEnd(f"refused: {first.reason}")
        if isinstance(first, LeaderNotice) or (isinstance(first, Delta) and not first.is_resync):
            return SessionEnd(f"protocol violation: a {first.type} before the full sync")
        if isinstance(first, Delta) and cursor is None:
            return SessionEnd("protocol violation: a resync though this spu named no cursor")
        if not self._apply(first):
            return self._stale(first)
        if self._state.resync_mismatch is not None:
            log.warning(
                "spu %d: the resync from sc %s at epoch %d does not add up (%s): "
                "registering again for a full sync",
                self._settings.spu_id,
                address,
                first.epoch,
                self._state.resync_mismatch,
            )
            return SessionEnd("a resync that did not add up", redirect=address)
        self._learn(first.sc_members)
        self._state.connected(address)
        log.info("spu %d: following sc %s at epoch %d", self._settings.spu_id, address, first.epoch)
        reason = await first_of(
            {"sc-link-read": self._read(channel), "sc-link-status": self._report(channel)}
        )
        return SessionEnd(reason, served=True)

    def _apply(self, message: FullSync | Delta) -> bool:
        """Pass ``message`` through the fence (and apply it); note the decision."""
        if not message.trace:
            accepted = self._state.apply(message)
        else:
            kind = "resync" if isinstance(message, Delta) and message.is_resync else message.type
            with spu_apply(self._settings.spu_id, kind, message.epoch, message.trace) as span:
                accepted = self._state.apply(message)
                if accepted:
                    self._applied_trace = span.get_span_context()
                else:
                    refused(span, f"stale epoch {message.epoch} < {self._state.highest_epoch}")
        self.events.record(
            epoch=message.epoch,
            accepted=accepted,
            message=message.type,
            highest=self._state.highest_epoch,
        )
        return accepted

    def _learn(self, sc_members: list[str]) -> None:
        """Add SC replicas the leader knows of to those this SPU tries (never removes:
        a replica it cannot reach costs one refused connection in a round)."""
        new = [a for a in sc_members if a not in self.addresses]
        if new:
            self.addresses.extend(new)
            log.info("spu %d: learned of sc replicas %s", self._settings.spu_id, ", ".join(new))

    async def _read(self, channel: _Channel) -> str:
        while True:
            try:
                message = await channel.receive()
            except TimeoutError:
                return f"no message from the sc for {self._settings.sc_timeout:g} s"
            except (ConnectionError, ProtocolError) as exc:
                return str(exc)
            if isinstance(message, FullSync | Delta):
                if not self._apply(message):
                    return self._stale(message).reason
            else:
                return f"the sc sent {message.type} during the session"

    async def _report(self, channel: _Channel) -> str:
        interval = self._settings.status_interval
        reporter = StatusReporter()
        while True:
            report = await reporter.next_report_sliced(self._state.replicas, self._offsets)
            if self._applied_trace is not None:
                with spu_status_report(self._settings.spu_id, self._applied_trace) as span:
                    report = report.model_copy(update={"trace": carrier(span)})
                self._applied_trace = None
            try:
                await channel.send_frame(await report_frame(report))
            except TimeoutError:
                return "the sc does not read status reports"
            except ConnectionError as exc:
                return f"connection lost: {exc or type(exc).__name__}"
            await asyncio.sleep(interval)

    def _stale(self, message: FullSync | Delta) -> SessionEnd:
        return SessionEnd(
            f"refused a {message.type} from stale epoch {message.epoch} (highest seen "
            f"{self._state.highest_epoch}, {self._state.refused} refused): a deposed leader"
        )


def split_dial(spec: str) -> tuple[str, str]:
    """``ADDR`` or ``ADDR@DIAL`` (an ``--sc`` value): the replica's private address as
    the SC replicas advertise it (redirects and full syncs name it so), and where to
    dial it: the same, or a proxy or tunnel in front of it (as ``--raft-peer`` has)."""
    address, _, dial = spec.partition("@")
    return address, dial or address
