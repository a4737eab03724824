"""``/leader``, ``/healthz``, ``/readyz``: who leads, and how this replica is doing."""

from __future__ import annotations

from aiohttp import web

from ha_sc.api.context import context, leader_info
from ha_sc.protocol.api_wire import LeaderReport, error_json


async def get_leader(request: web.Request) -> web.Response:
    ctx = context(request)
    view = ctx.view
    term = view.term()
    known = view.leader()
    report = LeaderReport(
        replica_id=view.replica_id,
        role="leader" if term is not None and term.is_valid() else "standby",
        leader=None if known is None else leader_info(known),
    )
    cache = view.cache
    applied = max(cache.view(kind).revision for kind in cache.kinds)
    return web.json_response({**report.to_json(), "revision": applied})


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and its event loop answers."""
    return web.json_response({"status": "ok", "replica_id": context(request).view.replica_id})


async def readyz(request: web.Request) -> web.Response:
    """200 once the cache did its first full sync, so reads are served from it."""
    ctx = context(request)
    revision = ctx.view.cache.revision
    if not ctx.ready():
        body = error_json("the cache has not synced with the KV store yet")
        return web.json_response({**body, "ready": False, "revision": revision}, status=503)
    return web.json_response({"ready": True, "revision": revision})
