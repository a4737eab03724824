"""``/api/v1/topics``: list, describe, create, delete."""

from __future__ import annotations

from aiohttp import web

from election.term import Term
from ha_sc.api import request_marks
from ha_sc.api.context import ApiContext, context
from ha_sc.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from ha_sc.api.problems import ApiProblem, not_found, parse_body, read_json
from ha_sc.api.provisioning import await_provisioned
from ha_sc.api.settle import until_reflected
from ha_sc.api.topic_store import store_topic
from ha_sc.controllers.spus.info import spu_infos
from ha_sc.controllers.topics.validation import partitions_ahead, validate_topic_spec
from ha_sc.kv.api import KeyExists, KeyNotFound
from ha_sc.model.kinds import Kind, Topic
from ha_sc.protocol.api_wire import API_PREFIX, CreateTopicRequest, list_body, object_json
from ha_sc.telemetry.tracing_spans import fenced_write

MAX_WAIT = 600.0
"""The longest provisioning wait a request may ask for (``?timeout=``)."""


async def list_topics(request: web.Request) -> web.Response:
    ctx = context(request)
    ctx.require_ready()
    topics = ctx.view.cache.topics
    items = [object_json(topic) for topic in sorted(topics.objects(), key=lambda t: t.key)]
    return web.Response(body=list_body(items, topics.revision), content_type="application/json")


async def get_topic(request: web.Request) -> web.Response:
    ctx = context(request)
    ctx.require_ready()
    name = request.match_info["name"]
    topic = ctx.view.cache.topics.get(name)
    if topic is None:
        raise not_found("topic", name)
    return web.json_response(object_json(topic))


async def create_topic(request: web.Request) -> web.Response:
    """Store the topic, then answer once it is provisioned (201) or undone (4xx/5xx).

    A repeat of a keyed create (a retry after a failover, say) finds the topic stored:
    only then is its request mark looked up, and the repeat answered as the first."""
    ctx = context(request)
    wanted = parse_body(CreateTopicRequest, await read_json(request))
    timeout = _wait_seconds(request, ctx)
    term = ctx.leading_term(request)
    key = request.headers.get(IDEMPOTENCY_HEADER) or None
    async with ctx.topic_lock:  # the checks hold until the topic is cached
        revision = await _store_new(ctx, term, wanted, key)
        if revision is not None:
            await until_reflected(ctx.view.cache.topics, revision, timeout)
    if revision is None:
        earlier = (
            await request_marks.created_by(ctx.view.kv, key, Kind.TOPIC.value, wanted.name)
            if key
            else None
        )
        if earlier is None:
            raise ApiProblem(409, f"topic {wanted.name!r} already exists", field="name")
        revision = earlier.create_revision  # a repeat of a create this key made
    topic = await await_provisioned(ctx, term, wanted.name, revision, timeout)
    return _created(topic, wanted.name)


async def _store_new(
    ctx: ApiContext, term: Term, wanted: CreateTopicRequest, key: str | None
) -> int | None:
    """Check the request against the cache, store the topic; its create revision, or
    None when a topic of that name is stored already."""
    cache = ctx.view.cache
    if wanted.name in cache.topics:
        return None
    _, in_cluster = partitions_ahead(cache.topics.objects(), ctx.limits)
    problem = validate_topic_spec(
        wanted.spec,
        spu_infos(cache.spus.objects()),
        limits=ctx.limits,
        partitions_elsewhere=in_cluster,
    )
    if problem is not None:
        raise ApiProblem(409, f"invalid topic config: {problem}", field="spec.replicas")
    try:
        return await store_topic(
            ctx, term, wanted.name, wanted.spec, in_cluster=in_cluster, key=key
        )
    except KeyExists:
        return None


def _created(topic: Topic, name: str) -> web.Response:
    return web.json_response(
        object_json(topic),
        status=201,
        headers={"Location": f"{API_PREFIX}/topics/{name}"},
    )


async def delete_topic(request: web.Request) -> web.Response:
    """Delete the topic; the KV deletes its partitions with it."""
    ctx = context(request)
    name = request.match_info["name"]
    term = ctx.leading_term(request)
    try:
        with fenced_write("delete", Kind.TOPIC.value, name, term.epoch) as span:
            revision = await ctx.view.kv.delete(Kind.TOPIC.value, name, guard=term.guard)
            span.set_attribute("revision", revision)
    except KeyNotFound:
        raise not_found("topic", name) from None
    await until_reflected(ctx.view.cache.topics, revision, ctx.provision_timeout)
    return web.json_response({"name": name, "deleted": True, "revision": revision})


def _wait_seconds(request: web.Request, ctx: ApiContext) -> float:
    text = request.query.get("timeout")
    if text is None:
        return ctx.provision_timeout
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_WAIT:
        raise ApiProblem(
            400, f"timeout must be a number of seconds in (0, {MAX_WAIT:g}]", field="timeout"
        )
    return seconds
