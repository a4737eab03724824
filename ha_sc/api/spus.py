"""``/api/v1/spus``: list, register a custom SPU, unregister it."""

from __future__ import annotations

from aiohttp import web

from ha_sc.api.context import context
from ha_sc.api.problems import ApiProblem, not_found, parse_body, read_json
from ha_sc.api.settle import until_reflected
from ha_sc.kv.api import KeyExists, KeyNotFound
from ha_sc.model.codec import encode_value
from ha_sc.model.kinds import Kind, Spu
from ha_sc.model.meta import ObjectMeta
from ha_sc.model.spu import SpuStatus, SpuType
from ha_sc.protocol.api_wire import API_PREFIX, RegisterSpuRequest, list_body, object_json


async def list_spus(request: web.Request) -> web.Response:
    ctx = context(request)
    ctx.require_ready()
    spus = ctx.view.cache.spus
    items = [object_json(spu) for spu in sorted(spus.objects(), key=lambda s: s.spec.id)]
    return web.Response(body=list_body(items, spus.revision), content_type="application/json")


async def register_spu(request: web.Request) -> web.Response:
    """Store a custom SPU under a new name and an SPU id no other SPU has."""
    ctx = context(request)
    wanted = parse_body(RegisterSpuRequest, await read_json(request))
    term = ctx.leading_term(request)
    spus = ctx.view.cache.spus
    async with ctx.spu_lock:
        if wanted.name in spus:
            raise ApiProblem(409, f"spu {wanted.name!r} already exists", field="name")
        taken = next((s for s in spus.objects() if s.spec.id == wanted.id), None)
        if taken is not None:
            raise ApiProblem(
                409, f"spu id {wanted.id} is already used by spu {taken.key!r}", field="id"
            )
        spec = wanted.custom_spec().to_spu_spec()
        try:
            revision = await ctx.view.kv.create(
                Kind.SPU.value, wanted.name, encode_value(spec), guard=term.guard
            )
        except KeyExists:
            raise ApiProblem(409, f"spu {wanted.name!r} already exists", field="name") from None
        await until_reflected(spus, revision, ctx.provision_timeout)
    spu = spus.get(wanted.name)
    if spu is None or spu.meta.create_revision != revision:
        meta = ObjectMeta(key=wanted.name, revision=revision, create_revision=revision)
        spu = Spu(meta=meta, spec=spec, status=SpuStatus())
    return web.json_response(
        object_json(spu), status=201, headers={"Location": f"{API_PREFIX}/spus/{wanted.name}"}
    )


async def unregister_spu(request: web.Request) -> web.Response:
    """Delete a custom SPU; managed SPUs belong to their SPU group."""
    ctx = context(request)
    name = request.match_info["name"]
    term = ctx.leading_term(request)
    cached = ctx.view.cache.spus.get(name)
    if cached is not None and cached.spec.spu_type is SpuType.MANAGED:
        raise ApiProblem(
            409,
            f"spu {name!r} is managed by an spu group; change the group instead",
            field="name",
        )
    try:
        revision = await ctx.view.kv.delete(Kind.SPU.value, name, guard=term.guard)
    except KeyNotFound:
        raise not_found("spu", name) from None
    await until_reflected(ctx.view.cache.spus, revision, ctx.provision_timeout)
    return web.json_response({"name": name, "deleted": True, "revision": revision})
