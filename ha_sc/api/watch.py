"""``/api/v1/watch``: the cache's changes as NDJSON, a full sync per kind first.

One line per batch of one kind (``WatchBatch``), each stamped with the epoch of
the leader this replica knows and the KV revision its cache of the kind
reflects. An idle stream gets a heartbeat line every ``watch_heartbeat`` s, which
also notices a client that went away. The stream ends when the server stops.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from ha_sc.api.context import ApiContext, context
from ha_sc.api.problems import ApiProblem
from ha_sc.api.settle import until_changed
from ha_sc.model.kinds import Kind
from ha_sc.protocol.api_wire import NDJSON, WatchBatch, parse_kinds
from ha_sc.store import ChangeListener

log = logging.getLogger("ha_sc.api")


async def watch(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    try:
        kinds = parse_kinds(request.query.get("kinds"))
    except ValueError as exc:
        raise ApiProblem(400, str(exc), field="kinds") from None
    ctx.require_ready()
    cache = ctx.view.cache
    listeners = {kind: cache.view(kind).listen() for kind in kinds}
    response = web.StreamResponse(headers={"Content-Type": NDJSON, "Cache-Control": "no-store"})
    await response.prepare(request)
    try:
        while not ctx.closing.is_set():
            for kind, listener in listeners.items():
                if listener.has_change():
                    await _send(response, _batch(ctx, kind, listener))
            epochs = [(cache.view(kind), _epoch(listener)) for kind, listener in listeners.items()]
            await until_changed(epochs, timeout=ctx.watch_heartbeat, closing=ctx.closing)
            if not ctx.closing.is_set() and not any(li.has_change() for li in listeners.values()):
                heartbeat = WatchBatch(None, False, (), (), ctx.leader_epoch(), cache.revision)
                await _send(response, heartbeat)
    except ConnectionError:
        log.debug("watch client at %s went away", request.remote)
    return response


def _batch(ctx: ApiContext, kind: Kind, listener: ChangeListener[Any, Any]) -> WatchBatch:
    changes = listener.take_changes()
    return WatchBatch(
        kind=kind,
        full_sync=changes.is_full_sync,
        updates=changes.updates,
        deletes=changes.deletes,
        leader_epoch=ctx.leader_epoch(),
        revision=ctx.view.cache.view(kind).revision,
    )


def _epoch(listener: ChangeListener[Any, Any]) -> int:
    return -1 if listener.synced_epoch is None else listener.synced_epoch


async def _send(response: web.StreamResponse, batch: WatchBatch) -> None:
    line = json.dumps(batch.to_json(), separators=(",", ":"), ensure_ascii=False)
    await response.write(line.encode() + b"\n")
