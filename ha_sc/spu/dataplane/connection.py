"""One client (or follower) connection to an SPU data port: frames in, answers out.

Each request frame is handed to the port's dispatcher, which returns the future of its
answer at once (produce: the write queue; fetch: a task that may wait). On the public
port answers leave in request order (a client may pipeline); on the private port each
leaves as soon as it is ready (one follower connection carries every partition it
follows, and a fetch waiting for records must not hold the others up). Before each
frame is handed on, the stream waits while ``max_in_flight`` requests, or
``MAX_BODY_BYTES`` of their bodies, are unanswered; reading pauses while the socket's
send buffer is past ``HIGH_WATER``. A connection that takes longer than
``frame_timeout`` to send its first whole frame, to finish a frame it started, or to
take answers waiting in a full send buffer, is closed. So one connection holds at most
about: the read chunk and one frame being decoded (``MAX_DATA_FRAME``), the bodies in
flight, ``HIGH_WATER`` plus ``max_in_flight`` answers (each capped by the port's
``max_fetch_bytes``) to send.
A frame that cannot be decoded ends the connection (only that one), and so does an
``unauthorized`` answer once it is sent (replica_session.py).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ha_sc.protocol.data import (
    DataFrameError,
    ErrorCode,
    encode_frame,
    request_decoder,
    write_frame,
)
from ha_sc.spu.dataplane.serving import Frame
from ha_sc.stream_close import close_stream

log = logging.getLogger("ha_sc.spu.dataplane")

READ_CHUNK = 1 << 20
HIGH_WATER = 8 << 20
"""Bytes buffered for sending past which reading waits for the socket to drain."""
MAX_BODY_BYTES = 64 << 20
"""Bytes in flight past which reading waits: request bodies unanswered and, on an
in-order (public) port, the bytes each unanswered fetch may be answered with (its
``max_bytes``, capped by ``max_answer``). One larger request still goes through alone."""

MAX_SEND_BUFFER = 256 << 20
"""Bytes of answers waiting to be sent past which the connection is closed: on the
private port many waiting fetches may be answered at once while their follower
reads nothing, and reading new requests pausing does not stop those."""

Dispatch = Callable[[Any, bytes], "asyncio.Future[Frame]"]


@runtime_checkable
class ClosingDispatch(Protocol):
    """A connection's dispatch that holds state of its own (the private port's fetch
    session): closed when the connection ends."""

    def __call__(self, header: Any, body: bytes) -> asyncio.Future[Frame]: ...

    def close(self) -> None: ...


class RequestStream:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        dispatch: Dispatch,
        *,
        in_order: bool,
        max_in_flight: int,
        frame_timeout: float,
        max_answer: int = MAX_BODY_BYTES,
        max_send_buffer: int = MAX_SEND_BUFFER,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._dispatch = dispatch
        self._in_order = in_order
        self._max_in_flight = max_in_flight
        self._frame_timeout = frame_timeout
        self._max_answer = max_answer
        self._max_send_buffer = max_send_buffer
        self._queue: collections.deque[asyncio.Future[Frame]] = collections.deque()
        self._in_flight: dict[asyncio.Future[Frame], int] = {}
        self._body_bytes = 0
        self._room = asyncio.Event()
        self._room.set()
        self._failed: str | None = None
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    async def run(self) -> None:
        """Serve until the peer closes, the framing breaks, a timeout, or cancellation."""
        decoder = request_decoder()
        deadline: float | None = time.monotonic() + self._frame_timeout
        try:
            while self._failed is None:
                while (frame := decoder.pop()) is not None:
                    await self._room.wait()
                    if self._failed is not None or not await self._drained():
                        return
                    header, body = frame
                    self._accept(self._dispatch(header, body), self._weight(header, body))
                    deadline = None
                if not await self._drained():
                    return
                if decoder.buffered and deadline is None:
                    deadline = time.monotonic() + self._frame_timeout
                data = await self._read(deadline)
                if not data:
                    return
                decoder.push(data)
        except DataFrameError as exc:
            log.warning("data connection from %s: %s; closing it", self.peer, exc)
        except (ConnectionError, OSError) as exc:
            log.debug("data connection from %s: %s", self.peer, exc)
        finally:
            await self._close()

    async def _read(self, deadline: float | None) -> bytes:
        """The next bytes, or b"" once the peer closed or ``deadline`` passed without a
        whole frame."""
        if deadline is None:
            return await self._reader.read(READ_CHUNK)
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                return await self._reader.read(READ_CHUNK)
        except TimeoutError:
            log.warning(
                "data connection from %s: no whole frame within %.1f s; closing it",
                self.peer,
                self._frame_timeout,
            )
            return b""

    async def _drained(self) -> bool:
        """Wait while the send buffer is past HIGH_WATER; False when the peer took
        nothing of it for ``frame_timeout``."""
        if self._writer.transport.get_write_buffer_size() <= HIGH_WATER:
            return True
        try:
            async with asyncio.timeout(self._frame_timeout):
                await self._writer.drain()
        except TimeoutError:
            log.warning(
                "data connection from %s: read none of its answers for %.1f s; closing it",
                self.peer,
                self._frame_timeout,
            )
            self._writer.transport.abort()  # what it did not read is dropped, not flushed
            return False
        return True

    def _weight(self, header: Any, body: bytes) -> int:
        """Bytes this request holds until answered: its body, and on an in-order port the
        answer it may get (answers queue there behind the oldest)."""
        if not self._in_order:
            return len(body)
        asked = getattr(header, "max_bytes", 0)
        answer = min(asked, self._max_answer) if isinstance(asked, int) else 0
        return len(body) + answer

    def _accept(self, answer: asyncio.Future[Frame], body_bytes: int) -> None:
        self._in_flight[answer] = body_bytes
        self._body_bytes += body_bytes
        if not self._has_room():
            self._room.clear()
        if self._in_order:
            self._queue.append(answer)
            answer.add_done_callback(self._send_ready)
        else:
            answer.add_done_callback(self._send_one)

    def _send_ready(self, _: object) -> None:
        queue = self._queue
        while queue and queue[0].done():
            self._send(queue.popleft())

    def _send_one(self, answer: asyncio.Future[Frame]) -> None:
        self._send(answer)

    def _send(self, answer: asyncio.Future[Frame]) -> None:
        self._body_bytes -= self._in_flight.pop(answer, 0)
        if self._has_room():
            self._room.set()
        if answer.cancelled() or self._writer.is_closing():
            return
        error = answer.exception()
        if error is not None:
            log.error("data connection from %s: a request failed", self.peer, exc_info=error)
            self._fail(f"request failed: {error!r}")
            return
        header, body = answer.result()
        try:
            frame = encode_frame(header, body)
        except DataFrameError as exc:
            self._cannot_send(str(exc))
            return
        write_frame(self._writer.write, frame)
        if header.error is not None and header.error.code is ErrorCode.UNAUTHORIZED:
            self._fail("unauthorized")  # the answer is flushed, then the connection closed
            return
        waiting = self._writer.transport.get_write_buffer_size()
        if waiting > self._max_send_buffer:
            log.warning(
                "data connection from %s: %d bytes of answers wait unread (max %d); closing it",
                self.peer,
                waiting,
                self._max_send_buffer,
            )
            self._writer.transport.abort()
            self._fail("answers unread")

    def _cannot_send(self, problem: str) -> None:
        log.error("data connection from %s: cannot send an answer: %s", self.peer, problem)
        self._fail(problem)

    def _has_room(self) -> bool:
        return len(self._in_flight) < self._max_in_flight and self._body_bytes < MAX_BODY_BYTES

    def close(self) -> None:
        """End the connection (the SPU is stopping)."""
        self._fail("closing")

    def _fail(self, reason: str) -> None:
        self._failed = reason
        self._room.set()
        self._writer.close()

    async def _close(self) -> None:
        for answer in list(self._in_flight):
            answer.cancel()
        self._in_flight.clear()
        self._body_bytes = 0
        self._queue.clear()
        await close_stream(self._writer)


def _loop_time(deadline: float) -> float:
    """``deadline`` (time.monotonic) on the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())
