"""A data port: listen on an address, serve each connection as a ``RequestStream``.

A port that cannot be bound (in use) is retried every second, with an error logged
the first time and every 30 s after: the SPU's control link goes on meanwhile.
A connection past the port's ``max_connections`` or ``max_connections_per_peer`` is
closed at once (logged once per peer per 30 s).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Coroutine

from ha_sc.protocol import parse_address
from ha_sc.protocol.admission import Admission, RefusalLog
from ha_sc.protocol.tls import peer_spu_id
from ha_sc.spu.dataplane.admission import PortLimits
from ha_sc.spu.dataplane.connection import ClosingDispatch, Dispatch, RequestStream
from ha_sc.spu.dataplane.follower_identity import identity_checked
from ha_sc.tls_upgrade import hold, upgrade

log = logging.getLogger("ha_sc.spu.dataplane")

RETRY = 1.0
COMPLAIN_EVERY = 30.0
CLOSE_WAIT = 5.0
"""Seconds a closing port waits for its connections to end."""


class DataPort:
    """One listening port (public or private) and its open connections."""

    def __init__(
        self,
        name: str,
        address: str,
        dispatch: Callable[[str], Dispatch],
        *,
        in_order: bool,
        limits: PortLimits,
        tls: ssl.SSLContext | None = None,
        check_followers: bool = False,
    ) -> None:
        """``dispatch`` gives each connection, by its peer host, what handles its requests
        (closed when the connection ends if it is a ``ClosingDispatch``).
        ``tls``: the port's TLS context (None: plain TCP); a connection is counted
        against the caps before its handshake, which must be done within the
        first-frame timeout. ``check_followers`` (with a context that
        requires client certificates): a replica fetch is served only for the SPU the
        peer's certificate names."""
        self.name = name
        self._tls = tls
        self._check_followers = check_followers
        self.address = address
        self._dispatch = dispatch
        self._in_order = in_order
        self._limits = limits
        self.admission = Admission(limits.max_connections, limits.max_connections_per_peer)
        self._refusals = RefusalLog()
        self._connections: dict[asyncio.Task[None], RequestStream] = {}
        self.bound = asyncio.Event()

    async def serve(self) -> None:
        """Listen (retrying a busy address) and serve until cancelled; then close every
        connection."""
        host, port = parse_address(self.address)
        complained_at: float | None = None
        try:
            while True:
                try:
                    server = await asyncio.start_server(
                        self._connected,
                        host,
                        port,
                        reuse_address=True,
                    )
                except OSError as exc:
                    problem = str(exc)
                else:
                    log.info("%s port listening on %s", self.name, self.address)
                    self.bound.set()
                    async with server:
                        await server.serve_forever()
                now = time.monotonic()
                if complained_at is None or now - complained_at >= COMPLAIN_EVERY:
                    log.error("%s port %s: cannot listen: %s", self.name, self.address, problem)
                    complained_at = now
                await asyncio.sleep(RETRY)
        finally:
            await self._close_connections()

    async def _close_connections(self) -> None:
        connections = dict(self._connections)
        for stream in connections.values():
            stream.close()
        if connections:
            await asyncio.wait(connections, timeout=CLOSE_WAIT)

    def _connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Coroutine[None, None, None]:
        """Called as the connection is made; asyncio runs the coroutine it returns."""
        if self._tls is not None:
            hold(writer)  # its ClientHello waits until the connection is counted
        return self._admit(reader, writer)

    async def _admit(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        refused = self.admission.refusal(host)
        if refused is not None:
            if self._refusals.due(host, time.monotonic()):
                log.warning(
                    "%s port: refused a connection from %s: %s (further refusals of it "
                    "are not logged for %.0f s)",
                    self.name,
                    host,
                    refused,
                    self._refusals.every,
                )
            writer.transport.abort()
            return
        try:
            if self._tls is not None:
                failed = await upgrade(writer, self._tls, self._limits.first_frame_timeout)
                if failed is not None:
                    log.debug("%s port: connection from %s: %s", self.name, host, failed)
                    writer.transport.abort()
                    return
            await self._serve_connection(reader, writer, host)
        finally:
            self.admission.closed(host)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str
    ) -> None:
        handler = dispatch = self._dispatch(host)
        if self._check_followers:
            peer = writer.get_extra_info("peername")
            proven = peer_spu_id(writer.get_extra_info("peercert"))
            dispatch = identity_checked(dispatch, proven, str(peer[0] if peer else "a peer"))
        stream = RequestStream(
            reader,
            writer,
            dispatch,
            in_order=self._in_order,
            max_in_flight=self._limits.max_in_flight,
            frame_timeout=self._limits.first_frame_timeout,
            max_answer=self._limits.max_answer,
            max_send_buffer=self._limits.max_send_buffer,
        )
        task = asyncio.current_task()
        assert task is not None
        task.set_name(f"{self.name} connection from {stream.peer}")
        self._connections[task] = stream
        try:
            await stream.run()
        except asyncio.CancelledError:
            pass  # the loop is closing; asyncio's server owns this task and must see it end
        finally:
            self._connections.pop(task, None)
            if isinstance(handler, ClosingDispatch):
                handler.close()
