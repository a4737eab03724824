"""The public API application and a small server that runs it on one address."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable

from aiohttp import web

from ha_sc.api import cluster, members, openapi, partitions, spus, topics, watch
from ha_sc.api.access import ApiTokens, access_middleware
from ha_sc.api.context import CONTEXT, ApiContext
from ha_sc.api.idempotency import LEDGER, RequestLedger, idempotency_middleware
from ha_sc.api.peer_requests import PeerRequests
from ha_sc.api.problems import FENCED_REFUSED, Handler, problem_middleware
from ha_sc.api.replica_view import ReplicaView
from ha_sc.api.request_body import body_deadline
from ha_sc.controllers.topics.validation import DEFAULT_LIMITS, TopicLimits
from ha_sc.http_guard import HttpLimits
from ha_sc.http_site import HttpSite
from ha_sc.protocol.admission import connection_guard
from ha_sc.protocol.api_wire import API_PREFIX, DEFAULT_PORT, split_host_port
from ha_sc.telemetry.metrics_http import add_metrics_route
from ha_sc.telemetry.metrics_sc import ScMetrics
from ha_sc.telemetry.tracing_http import tracing_middleware

log = logging.getLogger("ha_sc.api")

ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", f"{API_PREFIX}/topics", topics.list_topics),
    ("POST", f"{API_PREFIX}/topics", topics.create_topic),
    ("GET", f"{API_PREFIX}/topics/{{name}}", topics.get_topic),
    ("DELETE", f"{API_PREFIX}/topics/{{name}}", topics.delete_topic),
    ("GET", f"{API_PREFIX}/partitions", partitions.list_partitions),
    ("GET", f"{API_PREFIX}/spus", spus.list_spus),
    ("POST", f"{API_PREFIX}/spus", spus.register_spu),
    ("DELETE", f"{API_PREFIX}/spus/{{name}}", spus.unregister_spu),
    ("GET", f"{API_PREFIX}/watch", watch.watch),
    ("GET", "/cluster/members", members.list_members),
    ("POST", "/cluster/members", members.add_member),
    ("DELETE", "/cluster/members/{address}", members.remove_member),
    ("POST", "/cluster/step-down", members.step_down),
    ("GET", "/leader", cluster.get_leader),
    ("GET", "/healthz", cluster.healthz),
    ("GET", "/readyz", cluster.readyz),
    ("GET", "/openapi.json", openapi.get_openapi),
)
"""Every route: method, path, handler."""

DEFAULT_MAX_BODY = 1024 * 1024
"""Largest request body read, in bytes (``listeners.api_max_body_bytes``)."""
DEFAULT_MAX_REQUESTS_PER_PEER = 256
"""Requests (watch streams included) one client host may have open
(``listeners.api_max_requests_per_peer``)."""


DEFAULT_BODY_TIMEOUT = 30.0
"""Seconds for a request's whole body (``listeners.api_body_timeout``)."""


def create_app(
    view: ReplicaView,
    *,
    provision_timeout: float = 10.0,
    ready: Callable[[], bool] | None = None,
    watch_heartbeat: float = 15.0,
    limits: TopicLimits = DEFAULT_LIMITS,
    metrics: ScMetrics | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    max_requests_per_peer: int = DEFAULT_MAX_REQUESTS_PER_PEER,
    tokens: ApiTokens | None = None,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> web.Application:
    """The public API of one replica.

    ``ready`` tells whether the cache did its first full sync (the replica passes
    its dispatchers' ``ready`` events); without it, a cache that reflects some KV
    revision counts as synced. ``metrics``, if given, is served on ``GET /metrics``
    and counts the API's writes refused for a newer epoch. A request body larger than
    ``max_body`` bytes is answered 413 without being read; a request from a host with
    ``max_requests_per_peer`` open (watch streams included) is answered 429. ``tokens``,
    if given, are the bearer tokens a request needs (``ha_sc.api.access``); without, the
    API is open. A body must arrive whole within ``body_timeout`` seconds (else 408).
    """
    if provision_timeout <= 0 or watch_heartbeat <= 0:
        raise ValueError("provision_timeout and watch_heartbeat must be positive")
    app = web.Application(
        middlewares=[
            PeerRequests(max_requests_per_peer).middleware,
            tracing_middleware,
            *([] if tokens is None else [access_middleware(tokens)]),
            body_deadline(body_timeout),
            idempotency_middleware,
            problem_middleware,
        ],
        client_max_size=max_body,
    )
    app[LEDGER] = RequestLedger()
    ctx = ApiContext(
        view=view,
        provision_timeout=provision_timeout,
        ready=ready if ready is not None else (lambda: view.cache.revision > 0),
        watch_heartbeat=watch_heartbeat,
        limits=limits,
    )
    app[CONTEXT] = ctx
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    if metrics is not None:
        add_metrics_route(app, metrics.registry)
        app[FENCED_REFUSED] = metrics.controllers.fenced_writes_refused.labels("api").inc

    async def end_watches(_: web.Application) -> None:
        ctx.closing.set()

    app.on_shutdown.append(end_watches)
    return app


class ApiServer:
    """Runs ``create_app(view, ...)`` on ``address`` (``host:port``; port 0 picks one)."""

    def __init__(
        self,
        view: ReplicaView,
        address: str = f"0.0.0.0:{DEFAULT_PORT}",
        *,
        provision_timeout: float = 10.0,
        ready: Callable[[], bool] | None = None,
        watch_heartbeat: float = 15.0,
        shutdown_timeout: float = 5.0,
        limits: TopicLimits = DEFAULT_LIMITS,
        metrics: ScMetrics | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        max_requests_per_peer: int = DEFAULT_MAX_REQUESTS_PER_PEER,
        tokens: ApiTokens | None = None,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        connection_limits: HttpLimits = HttpLimits(),  # noqa: B008 (frozen)
        tls: ssl.SSLContext | None = None,
    ) -> None:
        host, port = split_host_port(address)
        self._app = create_app(
            view,
            provision_timeout=provision_timeout,
            ready=ready,
            watch_heartbeat=watch_heartbeat,
            limits=limits,
            metrics=metrics,
            max_body=max_body,
            max_requests_per_peer=max_requests_per_peer,
            tokens=tokens,
            body_timeout=body_timeout,
        )
        self._site = HttpSite(
            self._app,
            host,
            port,
            shutdown_timeout=shutdown_timeout,
            guard=connection_guard("public API", connection_limits),
            tls=tls,
            # a create waits up to its ?timeout= for provisioning: one whose client gave
            # up (a hedged attempt dropped) must not hold a request slot until then
            cancel_when_gone=True,
        )

    @property
    def app(self) -> web.Application:
        return self._app

    @property
    def address(self) -> str:
        """The bound ``host:port``; known once started."""
        if self._site.address is None:
            raise RuntimeError("the API server is not started")
        return self._site.address

    async def start(self) -> None:
        """Listen; raises OSError (nothing left running) if the address cannot be bound."""
        log.info("public API listening on %s", await self._site.start())

    async def stop(self) -> None:
        """Ends open watch streams, then stops serving; does nothing if not started."""
        await self._site.stop()
