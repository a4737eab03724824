"""What idle and slow clients may hold of an aiohttp listener.

A connection past the total or per-host cap is closed at once; one whose first
request's headers have not all arrived within ``header_timeout`` is closed; between
requests a connection stays open at most ``idle_timeout`` (aiohttp's keep-alive timeout,
which also closes one whose next request's headers have not all arrived by then). The
guard sits between the transport and aiohttp's request handler and only watches the
bytes go by. ``ha_sc.http_site.HttpSite`` takes one; ``ha_sc.protocol.admission``
builds one from its caps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol, cast

from aiohttp import web

log = logging.getLogger("ha_sc.http")

_END_OF_HEADERS = b"\r\n\r\n"


class Admitting(Protocol):
    """Counts open connections per peer host (``ha_sc.protocol.admission.Admission``)."""

    def refusal(self, host: str) -> str | None: ...

    def closed(self, host: str) -> None: ...


class RefusalsLogged(Protocol):
    """When a refusal of a host is logged (``ha_sc.protocol.admission.RefusalLog``)."""

    every: float

    def due(self, peer: str, now: float) -> bool: ...


@dataclass(frozen=True)
class HttpLimits:
    """What idle and slow clients may hold of one HTTP listener."""

    max_connections: int = 4096
    """Open connections; the next one is closed at once."""
    max_connections_per_peer: int = 256
    """Open connections from one host."""
    header_timeout: float = 10.0
    """Seconds from connecting to the end of the first request's headers."""
    idle_timeout: float = 60.0
    """Seconds a connection may wait for its next request (and its headers)."""

    def __post_init__(self) -> None:
        if min(self.max_connections, self.max_connections_per_peer) < 1:
            raise ValueError("connection caps must be at least 1")
        if min(self.header_timeout, self.idle_timeout) <= 0:
            raise ValueError("the header and idle timeouts must be > 0")


@dataclass(frozen=True)
class ConnectionGuard:
    name: str
    """The listener, in log lines ("public API")."""
    limits: HttpLimits
    admission: Admitting
    """Built with ``limits``' caps."""
    refusals: RefusalsLogged


class GuardedSite(web.TCPSite):
    """A TCP site whose every connection goes through a ``_GuardedConnection``."""

    def __init__(self, guard: ConnectionGuard, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # what TCPSite.start does, with the factory wrapped
        server = self._runner.server
        assert server is not None
        guard = self._guard
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _GuardedConnection(server(), guard),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )


class _GuardedConnection(asyncio.Protocol):
    """Admits the connection, times its first request's headers, and hands every event
    on to aiohttp's request handler."""

    def __init__(self, handler: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self._handler = handler
        self._guard = guard
        self._host: str | None = None
        """The peer host, once admitted."""
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._tail = b""
        """The last bytes received before the first request's headers ended."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        refused = self._guard.admission.refusal(host)
        if refused is not None:
            self._say(host, f"refused a connection from {host}: {refused}")
            cast(asyncio.Transport, transport).abort()
            return
        self._host, self._transport = host, cast(asyncio.Transport, transport)
        self._deadline = asyncio.get_running_loop().call_later(
            self._guard.limits.header_timeout, self._too_slow
        )
        self._handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._host is None:
            return
        if self._deadline is not None:
            seen = self._tail + data
            if _END_OF_HEADERS in seen:
                self._deadline.cancel()
                self._deadline, self._tail = None, b""
            else:
                self._tail = seen[-(len(_END_OF_HEADERS) - 1) :]
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self._handler.eof_received() if self._host is not None else None

    def pause_writing(self) -> None:
        if self._host is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._host is not None:
            self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        host, self._host = self._host, None
        if host is None:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._guard.admission.closed(host)
        self._handler.connection_lost(exc)

    def _too_slow(self) -> None:
        self._deadline = None
        host = self._host
        if host is None or self._transport is None:
            return
        self._say(
            host,
            f"closed a connection from {host}: no whole request headers within "
            f"{self._guard.limits.header_timeout:g} s",
        )
        self._transport.abort()

    def _say(self, host: str, what: str) -> None:
        refusals = self._guard.refusals
        if refusals.due(host, time.monotonic()):
            log.warning(
                "%s: %s (further refusals of that host are not logged for %.0f s)",
                self._guard.name,
                what,
                refusals.every,
            )
