"""A topic create answers only once the topic is provisioned, or undoes itself.

The create stores a topic Provisioned with its partitions when the topic reducer's
first pass would (``topic_store``); otherwise the leader's controllers provision it.
Either way the API handler watches its own cache for the topic Provisioned with every
partition stored. A topic that ends InvalidConfig or InsufficientResources, or is
not provisioned in time, is deleted again (fenced by the same term), so a failed
create leaves nothing behind and can simply be retried.
"""

from __future__ import annotations

import asyncio

from election.term import Term
from ha_sc.api.context import ApiContext
from ha_sc.api.problems import ApiProblem
from ha_sc.api.settle import until_changed, until_reflected
from ha_sc.kv.api import KeyNotFound, KvError, RevisionConflict
from ha_sc.model.kinds import Kind, Topic
from ha_sc.model.partition import partition_key
from ha_sc.model.topic import TopicResolution

FAILED = {
    TopicResolution.INVALID_CONFIG: 409,
    TopicResolution.INSUFFICIENT_RESOURCES: 503,
}
"""Resolutions that end a create, and the status the API answers with."""

_REMOVE_ATTEMPTS = 3


async def await_provisioned(
    ctx: ApiContext, term: Term, name: str, create_revision: int, timeout: float
) -> Topic:
    """The topic once provisioned with all its partitions stored; else an ApiProblem."""
    cache = ctx.view.cache
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        epochs = ((cache.topics, cache.topics.epoch), (cache.partitions, cache.partitions.epoch))
        topic = cache.topics.get(name)
        if topic is not None and topic.meta.create_revision == create_revision:
            missing = _missing_partitions(ctx, topic)
            resolution = topic.status.resolution
            if resolution is TopicResolution.PROVISIONED and not missing:
                return topic
            if resolution in FAILED:
                outcome = await _remove(ctx, term, name, create_revision)
                raise ApiProblem(
                    FAILED[resolution],
                    f"topic {name!r} is {resolution.value}: {topic.status.reason}; {outcome}",
                    field="spec",
                    extra={"resolution": resolution.value, "reason": topic.status.reason},
                )
        elif cache.topics.revision >= create_revision:
            raise ApiProblem(409, f"topic {name!r} was deleted while it was being provisioned")
        if not term.is_valid():
            raise ApiProblem(
                503,
                f"leadership changed while topic {name!r} was being provisioned; it is "
                "stored, and the new leader provisions it",
            )
        if ctx.closing.is_set():
            raise ApiProblem(503, f"the server is stopping; topic {name!r} is stored")
        remaining = deadline - loop.time()
        if remaining <= 0:
            outcome = await _remove(ctx, term, name, create_revision)
            raise ApiProblem(
                504,
                f"topic {name!r} was not provisioned within {timeout:g} s: "
                f"{_progress(ctx, topic, create_revision)}; {outcome}",
            )
        await until_changed(epochs, timeout=remaining, term=term, closing=ctx.closing)


def _missing_partitions(ctx: ApiContext, topic: Topic) -> list[str]:
    partitions = ctx.view.cache.partitions
    keys = (partition_key(topic.key, pid) for pid in sorted(topic.status.replica_map))
    return [key for key in keys if key not in partitions]


def _progress(ctx: ApiContext, topic: Topic | None, create_revision: int) -> str:
    """What the topic still lacks, in words."""
    if topic is None or topic.meta.create_revision != create_revision:
        return "the cache has not seen it yet"
    status = topic.status
    if status.resolution is TopicResolution.PROVISIONED:
        missing = ", ".join(_missing_partitions(ctx, topic))
        return f"status Provisioned, partitions not stored yet: {missing}"
    reason = f" ({status.reason})" if status.reason else ""
    return f"status {status.resolution.value}{reason}"


async def _remove(ctx: ApiContext, term: Term, name: str, create_revision: int) -> str:
    """Delete the topic this create stored; says what became of it."""
    kv = ctx.view.kv
    for _ in range(_REMOVE_ATTEMPTS):
        if not term.is_valid():
            return "it is still stored (leadership changed)"
        try:
            entry = await kv.get(Kind.TOPIC.value, name)
            if entry is None or entry.create_revision != create_revision:
                return "it is no longer stored"
            revision = await kv.delete(
                Kind.TOPIC.value, name, expected_revision=entry.revision, guard=term.guard
            )
        except RevisionConflict:
            continue
        except KeyNotFound:
            return "it is no longer stored"
        except KvError as exc:
            return f"removing it failed ({exc}); it is still stored"
        await until_reflected(ctx.view.cache.topics, revision, ctx.provision_timeout)
        return "the topic was removed"
    return "removing it failed (it kept changing); it is still stored"
