"""One registered SPU's connection to the leader: specs out, status in.

The task ``spu-conn-<id>-<n>`` sends the full sync, then a delta whenever the
cache's specs change (an empty delta every ``keepalive_interval`` when nothing
does, so the SPU can tell a live leader from a silent one). With SPU tokens, the full
sync carries every SPU's replica-fetch key, and a delta carries them again when the
token file changed. It reads the SPU's
status reports; each one is also a heartbeat. The connection ends, and the SPU
counts as offline, on the first of: the SPU closes it or sends something
malformed, no status within ``health_timeout``, the term it was opened under
ends (or its renew deadline passes), the SPU is unregistered, or the server
closes it. After a message carrying replica specs the SPU gets ``DIGEST_PER_SPEC``
more per spec before its silence counts: it reports only once it has applied them,
and an SPU holding 67k replicas takes seconds over a full sync (taking it for
offline then moved the leadership of every partition it led). Silences are timed in
awake time (``ha_sc.awake``): a stall of the leader's own loop is not the SPU's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from election.term import Term
from ha_sc import awake
from ha_sc.protocol import (
    Delta,
    FullSync,
    MessageDecoder,
    ProtocolError,
    Register,
    SpecCursor,
    SpuMessage,
    StatusReport,
    Watch,
    encode_message,
)
from ha_sc.sc.spu_spec_sync import ReplicaSpecs, SpecSync
from ha_sc.store import GlobalStore
from ha_sc.stream_close import close_stream
from ha_sc.tasks import first_of
from ha_sc.telemetry.tracing_context import carrier
from ha_sc.telemetry.tracing_spans import ended_with, spu_push

log = logging.getLogger("ha_sc.sc.spu")

READ_CHUNK = 64 * 1024
DIGEST_PER_SPEC = 0.0001
"""Seconds of extra patience per replica spec sent (10k specs: one more second)."""


@dataclass(frozen=True, slots=True)
class ReceivedStatus:
    """An SPU's last status report and when it arrived (``time.monotonic()``)."""

    report: StatusReport
    at: float


class SpuConnection:
    """Serves one registered SPU under one term; run it as ``spu-conn-<id>-<n>``."""

    def __init__(
        self,
        spu_id: int,
        *,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        decoder: MessageDecoder[SpuMessage],
        received: Sequence[SpuMessage] = (),
        term: Term,
        cache: GlobalStore,
        on_status: Callable[[ReceivedStatus], None],
        peer: str,
        health_timeout: float,
        keepalive_interval: float,
        sc_members: Callable[[], list[str]] = list,
        replica_specs: ReplicaSpecs | None = None,
        pushes: Counter[str] | None = None,
        fetch_keys: Callable[[], dict[int, str] | None] = lambda: None,
        cursor: SpecCursor | None = None,
        won_back: Callable[[Term], Awaitable[Term | None]] | None = None,
    ) -> None:
        """``won_back(ended)``: the term this replica won back under ``ended``'s epoch,
        if it does so soon (``SpuServer``); the session then goes on under it."""
        self.spu_id = spu_id
        self._won_back = won_back
        self._won_back_event = asyncio.Event()
        """Set (and replaced) when the session goes on under a term won back."""
        self._cursor = cursor
        """What the SPU said its specs reflect (None: it holds none)."""
        self._fetch_keys = fetch_keys
        self._keys_sent: dict[int, str] | None = None
        self._pushes: Counter[str] = pushes if pushes is not None else Counter()
        """Messages sent, by kind (``push_kind``), for the replica's metrics."""
        self.peer = peer
        self._reader = reader
        self._writer = writer
        self._decoder = decoder
        self._received = list(received)  # decoded with the register message, not yet handled
        self._term = term
        self._sync = SpecSync(cache, spu_id, specs=replica_specs)
        self._on_status = on_status
        self._health_timeout = health_timeout
        self._keepalive = keepalive_interval
        self._sc_members = sc_members
        self._close_requested = asyncio.Event()
        self._close_reason = ""
        self._silent_until = 0.0
        """Awake time (``awake.now``) past which the SPU's silence ends the connection."""
        self.first_sent = False
        """The session's first message (a full sync or a resync) has reached the SPU's
        socket: the SPU holds its specs as of this term."""

    @property
    def epoch(self) -> int:
        """The epoch of the term this connection serves under."""
        return self._term.epoch

    def close(self, reason: str) -> None:
        """Ask the connection to end; ``run`` returns soon after."""
        if not self._close_requested.is_set():
            self._close_reason = reason
            self._close_requested.set()

    async def run(self) -> str:
        """Serve the SPU until the connection ends; returns why it ended."""
        try:
            return await self._serve()
        finally:
            await close_stream(self._writer)

    async def _serve(self) -> str:
        self._keys_sent = self._fetch_keys()
        first = await self._first_message()
        if not self._term.is_valid():
            return self._term_reason()
        failure = await self._traced_send(first)
        if failure:
            return failure
        self.first_sent = True
        if isinstance(first, FullSync):
            log.info(
                "spu %d registered from %s: full sync of %d spus and %d replicas at epoch %d "
                "(cursor %s; the spu's: %s)",
                self.spu_id,
                self.peer,
                len(first.spus),
                len(first.replicas),
                first.epoch,
                first.cursor,
                self._cursor,
            )
            sent = len(first.replicas)
        else:
            log.info(
                "spu %d registered from %s: resync since %s at epoch %d: "
                "%d replicas changed of %d held (cursor %s)",
                self.spu_id,
                self.peer,
                first.since,
                first.epoch,
                len(first.replicas_changed),
                len(first.replicas_held or ()),
                first.cursor,
            )
            sent = len(first.replicas_changed)
        name = f"spu-conn-{self.spu_id}"
        return await first_of(
            {
                f"{name}-push": self._push(),
                f"{name}-status": self._read_status(first_wait=self._patience(sent)),
                f"{name}-term": self._until_term_ends(),
                f"{name}-close": self._until_closed(),
            }
        )

    async def _first_message(self) -> FullSync | Delta:
        """The changes since the SPU's cursor if it has one and the cache can tell them,
        else a full sync."""
        update = {"sc_members": self._sc_members(), "fetch_keys": self._keys_sent}
        if self._cursor is not None:
            resync = await self._sync.resync(self._term.epoch, self._cursor)
            if resync is not None:
                return resync.model_copy(update=update)
        return (await self._sync.full_sync(self._term.epoch)).model_copy(update=update)

    async def _push(self) -> str:
        loop = asyncio.get_running_loop()
        last_sent = loop.time()
        while True:
            await self._sync.wait_for_change(max(0.0, last_sent + self._keepalive - loop.time()))
            while not self._term.is_valid():  # re-checked before every message
                # nothing is sent until the term is won back or the session ends
                # (``_until_term_ends`` decides which)
                await self._won_back_event.wait()
            delta = self._with_new_keys(self._sync.delta(self._term.epoch))
            if delta.is_empty and loop.time() - last_sent < self._keepalive:
                continue
            failure = await (self._send(delta) if delta.is_empty else self._traced_send(delta))
            if failure:
                return failure
            self._be_patient(len(delta.replicas_changed))
            if not delta.is_empty:
                log.debug("spu %d: sent %s", self.spu_id, _describe(delta))
            if self.spu_id in delta.spus_removed:
                return f"spu {self.spu_id} is no longer registered with the cluster"
            last_sent = loop.time()

    def _with_new_keys(self, delta: Delta) -> Delta:
        """``delta`` carrying the fetch keys again if they changed since last sent."""
        keys = self._fetch_keys()
        if keys is None or keys is self._keys_sent or keys == self._keys_sent:
            return delta
        self._keys_sent = keys
        log.info("spu %d: sending the replica-fetch keys of %d spus again", self.spu_id, len(keys))
        return delta.model_copy(update={"fetch_keys": keys})

    def _patience(self, specs: int) -> float:
        """How long the SPU may be silent after being sent ``specs`` replica specs."""
        return self._health_timeout + DIGEST_PER_SPEC * specs

    async def _read_status(self, *, first_wait: float) -> str:
        self._allow(first_wait)
        messages, self._received = self._received, []
        try:
            while True:
                for message in messages:
                    violation = self._handle(message)
                    if violation:
                        return f"protocol violation: {violation}"
                    # a report never shortens the time given to apply specs sent
                    self._allow(self._health_timeout)
                data = await self._read_until_silent()
                if data is None:
                    return f"no status for {self._health_timeout:g} s (and the time its specs took)"
                if not data:
                    return "connection closed by the spu"
                messages = self._decoder.feed(data)
        except ProtocolError as exc:
            return f"malformed message: {exc}"
        except ConnectionError as exc:
            return f"connection lost: {exc or type(exc).__name__}"

    async def _read_until_silent(self) -> bytes | None:
        """The next bytes from the SPU; None once its silence has run out."""
        while (left := self._silent_until - awake.now()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    return await self._reader.read(READ_CHUNK)
            # in wall time; the loop's own stalls or more patience may leave time
        return None

    def _allow(self, seconds: float) -> None:
        """Let the SPU be silent for ``seconds`` more from now, if that is longer."""
        self._silent_until = max(self._silent_until, awake.now() + seconds)

    def _be_patient(self, specs: int) -> None:
        """Give the SPU time to apply ``specs`` replica specs before its silence counts."""
        if specs:
            self._allow(self._patience(specs))

    def _handle(self, message: SpuMessage) -> str | None:
        """Take in one message; returns what is wrong with it, if anything."""
        if isinstance(message, Register):
            return "the spu registered twice"
        if isinstance(message, Watch):
            return "the spu sent a watch message during its session"
        if message.spu_id != self.spu_id:
            return f"a status report of spu {message.spu_id} on the connection of spu {self.spu_id}"
        self._on_status(ReceivedStatus(message, time.monotonic()))
        return None

    async def _until_term_ends(self) -> str:
        """Until the term ends and is not won back under the same epoch (a leader that
        missed its renew deadline under load and renewed the same lease right after:
        its SPUs keep their sessions rather than register and resync again)."""
        while True:
            term = self._term
            while term.is_valid():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, term.valid_until - time.monotonic())):
                        await term.lost.wait()
            again = None if self._won_back is None else await self._won_back(term)
            if again is None:
                return self._term_reason()
            log.info(
                "spu %d: epoch %d won back (%s); the session goes on",
                self.spu_id,
                again.epoch,
                term.lost_reason or "its renew deadline passed",
            )
            self._term = again
            self._won_back_event.set()
            self._won_back_event = asyncio.Event()

    async def _until_closed(self) -> str:
        await self._close_requested.wait()
        return self._close_reason

    def _term_reason(self) -> str:
        reason = self._term.lost_reason or "its renew deadline passed"
        return f"term at epoch {self._term.epoch} ended: {reason}"

    async def _traced_send(self, message: FullSync | Delta) -> str | None:
        """``_send`` in a push span whose context travels in the message's ``trace``."""
        changed = message.replicas if isinstance(message, FullSync) else message.replicas_changed
        whole = isinstance(message, FullSync) or message.is_resync
        partitions = [] if whole else [r.partition for r in changed]
        with spu_push(self.spu_id, message.epoch, push_kind(message), partitions) as span:
            span.set_attribute("replicas", len(changed))
            headers = carrier(span)
            if headers:
                message = message.model_copy(update={"trace": headers})
            failure = await self._send(message)
            ended_with(span, failure)
            return failure

    async def _send(self, message: FullSync | Delta) -> str | None:
        """Send and wait until the SPU takes it; why the connection cannot go on, if so."""
        try:
            self._writer.write(encode_message(message))
            await awake.within(self._health_timeout, self._writer.drain)
        except TimeoutError:
            return f"the spu took no message for {self._health_timeout:g} s"
        except ConnectionError as exc:
            return f"connection lost: {exc or type(exc).__name__}"
        self._pushes[push_kind(message)] += 1
        return None


def push_kind(message: FullSync | Delta) -> str:
    if isinstance(message, FullSync):
        return "full_sync"
    if message.is_resync:
        return "resync"
    return "keepalive" if message.is_empty else "delta"


def _describe(delta: Delta) -> str:
    return (
        f"delta at epoch {delta.epoch}: spus changed {[s.id for s in delta.spus_changed]}, "
        f"removed {delta.spus_removed}; replicas changed "
        f"{[r.partition for r in delta.replicas_changed]}, removed {delta.replicas_removed}"
    )
