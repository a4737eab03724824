"""Requests one client host may have open at once on the public API.

A watch stream stays open for as long as the client reads it, so a host that opens
streams without end would hold a connection, a task and a queue for each. Past
``max_per_peer`` open requests, the next one from that host is answered 429 at once
(logged once per host per 30 s).
"""

from __future__ import annotations

import collections
import logging
import time

from aiohttp import web

from ha_sc.api.problems import ApiProblem, Handler
from ha_sc.protocol.admission import RefusalLog

log = logging.getLogger("ha_sc.api")


class PeerRequests:
    """The open requests per client host, as an aiohttp middleware."""

    def __init__(self, max_per_peer: int) -> None:
        self._max = max_per_peer
        self._open: collections.Counter[str] = collections.Counter()
        self._refusals = RefusalLog()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.remote or "unknown"
        if self._open[host] >= self._max:
            if self._refusals.due(host, time.monotonic()):
                log.warning(
                    "public API: refused a request from %s: it has %d open "
                    "(api_max_requests_per_peer; further refusals not logged for %.0f s)",
                    host,
                    self._open[host],
                    self._refusals.every,
                )
            return ApiProblem(429, f"{host} has {self._max} requests open", retry=True).response()
        self._open[host] += 1
        try:
            return await handler(request)
        finally:
            self._open[host] -= 1
            if self._open[host] <= 0:
                del self._open[host]

    def open(self, host: str) -> int:
        return self._open[host]
