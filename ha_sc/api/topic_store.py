"""How a create stores its topic: provisioned with its partitions in one batch write
when the topic reducer provisions it in one pass, else ``Init`` for the controllers.

``provisioned_create`` (controllers/topics) decides from the leader's cache: the SPUs
as stored (their status is the controllers' last word on who is online), the
partitions for the load and for keys an orphan still holds. A topic of more than
``ONE_WRITE_UP_TO`` partitions, or any topic in a store of more than ``STORE_UP_TO``,
is stored ``Init``: the controllers write its partitions in waves through their write
window, as a large store is filled.
"""

from __future__ import annotations

import contextlib
import time

from election.term import Term
from ha_sc.api import request_marks
from ha_sc.api.context import ApiContext
from ha_sc.controllers.actions import CreateObject
from ha_sc.controllers.spus.info import spu_infos
from ha_sc.controllers.spus.load import spu_load
from ha_sc.controllers.topics.provisioned_create import provisioned_create
from ha_sc.controllers.write_waves import BATCH
from ha_sc.kv.api import CreateOp, KvError
from ha_sc.model.codec import encode_value
from ha_sc.model.kinds import Kind
from ha_sc.model.topic import TopicSpec
from ha_sc.telemetry.tracing_spans import fenced_write

ONE_WRITE_UP_TO = BATCH
"""The most partitions a topic is stored with in the create's own write."""
STORE_UP_TO = 2_000
"""Cached partitions up to which a create decides its placement itself: it counts the
load of every one on the event loop (0.8 ms at 2000 on an idle core, 4 ms median on
this loaded machine; 5x that at 10k). In a larger store the controllers place new
topics, many in one pass, as when the store is filled."""


async def store_topic(
    ctx: ApiContext, term: Term, name: str, spec: TopicSpec, *, in_cluster: int, key: str | None
) -> int:
    """Store topic ``name`` fenced by ``term`` (with the request's mark when ``key``);
    its create revision. Raises KeyExists when the topic exists.

    The caller holds ``ctx.topic_lock`` from its checks until the topic is cached: a
    batch whose topic is refused as existing still creates the partitions beside it,
    which would then count as that other topic's."""
    creates = _provisioned(ctx, name, spec, in_cluster) or [CreateObject(Kind.TOPIC, name, spec)]
    kv = ctx.view.kv
    with contextlib.ExitStack() as stack:
        spans = [
            stack.enter_context(fenced_write("create", c.kind.value, c.key, term.epoch))
            for c in creates
        ]
        for span in spans:
            span.set_attribute("batch", len(creates))
        topic, *partitions = [_op(create) for create in creates]
        if key:  # the request's mark, the topic and its partitions in one batch write
            revision = await request_marks.create_marked(
                kv,
                term.guard,
                key,
                Kind.TOPIC.value,
                name,
                topic.value,
                beside=partitions,
                prune=_prune_due(ctx),
            )
        else:
            created, *_ = await kv.write_batch([topic, *partitions], guard=term.guard)
            if isinstance(created, KvError):
                raise created
            revision = created
        spans[0].set_attribute("revision", revision)
        return revision


def _provisioned(
    ctx: ApiContext, name: str, spec: TopicSpec, in_cluster: int
) -> list[CreateObject] | None:
    cache = ctx.view.cache
    if _partition_count(spec) > ONE_WRITE_UP_TO or len(cache.partitions) > STORE_UP_TO:
        return None
    partitions = cache.partitions.snapshot()
    return provisioned_create(
        name,
        spec,
        spus=spu_infos(cache.spus.objects()),
        partitions=partitions,
        load=spu_load(partitions.values()),
        limits=ctx.limits,
        partitions_elsewhere=in_cluster,
    )


def _prune_due(ctx: ApiContext) -> bool:
    now = time.monotonic()
    if now - ctx.marks_pruned_at < request_marks.PRUNE_EVERY:
        return False
    ctx.marks_pruned_at = now
    return True


def _partition_count(spec: TopicSpec) -> int:
    replicas = spec.replicas
    if replicas.computed is not None:
        return replicas.computed.partitions
    return len(replicas.assigned.replica_map()) if replicas.assigned is not None else 0


def _op(create: CreateObject) -> CreateOp:
    return CreateOp(
        create.kind.value, create.key, encode_value(create.spec, create.status, create.owner)
    )
