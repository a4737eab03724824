"""``/api/v1/partitions``: list, optionally of one topic."""

from __future__ import annotations

from aiohttp import web

from ha_sc.api.context import context
from ha_sc.model.kinds import Partition
from ha_sc.model.partition import parse_partition_key
from ha_sc.protocol.api_wire import list_body, object_json


def _order(partition: Partition) -> tuple[str, int]:
    return parse_partition_key(partition.key)


async def list_partitions(request: web.Request) -> web.Response:
    ctx = context(request)
    ctx.require_ready()
    topic = request.query.get("topic")
    partitions = ctx.view.cache.partitions
    if topic is None:
        chosen = list(partitions.objects())
    else:  # the cache's index by topic: one topic's partitions, not a scan of all
        chosen = [p for key in partitions.keys_in(topic) if (p := partitions.get(key)) is not None]
    items = [object_json(p) for p in sorted(chosen, key=_order)]
    return web.Response(body=list_body(items, partitions.revision), content_type="application/json")
