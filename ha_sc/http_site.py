"""One aiohttp application listening on one ``host``/``port``: start, its bound address, stop.

With a ``ConnectionGuard`` (``ha_sc.http_guard``) the site bounds what idle and slow
clients cost.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiohttp import web

from ha_sc.http_guard import ConnectionGuard, GuardedSite


class HttpSite:
    """Runs ``app`` on ``host:port`` (port 0 picks one), over TLS when given ``tls``.

    ``cancel_when_gone``: a handler whose client closed the connection is cancelled (by
    default aiohttp lets it run to its end, answering nobody)."""

    def __init__(
        self,
        app: web.Application,
        host: str,
        port: int,
        *,
        shutdown_timeout: float = 5.0,
        guard: ConnectionGuard | None = None,
        tls: ssl.SSLContext | None = None,
        cancel_when_gone: bool = False,
    ) -> None:
        self._host, self._port = host, port
        handler: dict[str, Any] = (
            {} if guard is None else {"keepalive_timeout": guard.limits.idle_timeout}
        )
        if cancel_when_gone:
            handler["handler_cancellation"] = True
        self._runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout, **handler)
        self._guard = guard
        self._tls = tls
        self._address: str | None = None
        self._set_up = False

    @property
    def address(self) -> str | None:
        """The bound ``host:port`` while listening."""
        return self._address

    async def start(self) -> str:
        """Listen and return the bound address; raises OSError (nothing left running) if
        it cannot be bound."""
        await self._runner.setup()
        self._set_up = True
        # SO_REUSEADDR: a restarted process binds at once, whatever TIME_WAIT is left
        site = (
            web.TCPSite(
                self._runner, self._host, self._port, reuse_address=True, ssl_context=self._tls
            )
            if self._guard is None
            else GuardedSite(
                self._guard,
                self._runner,
                self._host,
                self._port,
                reuse_address=True,
                ssl_context=self._tls,
            )
        )
        try:
            await site.start()
        except BaseException:
            await self.stop()
            raise
        host, port = self._runner.addresses[0][:2]
        self._address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return self._address

    async def stop(self) -> None:
        """Stop serving (the app's shutdown hooks run first); does nothing if not started."""
        if self._set_up:
            self._set_up = False
            await self._runner.cleanup()
        self._address = None
