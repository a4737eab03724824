"""``GET /metrics`` as an aiohttp handler, and a server with only that route (SPUs)."""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CollectorRegistry

from ha_sc.http_guard import HttpLimits
from ha_sc.http_site import HttpSite
from ha_sc.protocol.admission import connection_guard
from ha_sc.protocol.api_wire import split_host_port
from ha_sc.telemetry.metrics import CONTENT_TYPE, exposition

log = logging.getLogger("ha_sc.telemetry")

METRICS_PATH = "/metrics"
REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("metrics_registry", CollectorRegistry)


async def serve_metrics(request: web.Request) -> web.Response:
    """The app's registry in the Prometheus text format."""
    body = exposition(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_metrics_route(app: web.Application, registry: CollectorRegistry) -> None:
    app[REGISTRY] = registry
    app.router.add_get(METRICS_PATH, serve_metrics)


METRICS_LIMITS = HttpLimits(max_connections=64, max_connections_per_peer=16)
"""A scraper holds one connection; a few more are room for people looking."""


class MetricsServer:
    """Serves ``/metrics`` of ``registry`` on ``address`` (``host:port``; port 0 picks one)."""

    def __init__(self, registry: CollectorRegistry, address: str) -> None:
        app = web.Application()
        add_metrics_route(app, registry)
        self._site = HttpSite(
            app, *split_host_port(address), guard=connection_guard("metrics", METRICS_LIMITS)
        )

    @property
    def address(self) -> str:
        """The bound ``host:port``; known once started."""
        if self._site.address is None:
            raise RuntimeError("the metrics server is not started")
        return self._site.address

    async def start(self) -> None:
        """Listen; raises OSError (nothing left running) if the address cannot be bound."""
        log.info("metrics on http://%s%s", await self._site.start(), METRICS_PATH)

    async def stop(self) -> None:
        await self._site.stop()
