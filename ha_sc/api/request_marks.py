"""Which request created an object, kept in the KV so any leader can tell.

The in-memory ledger (``idempotency``) answers a repeated key on the replica that
saw it first; a repeat that reaches a new leader after a failover finds nothing
there. So a keyed create first stores a mark, ``requests/<digest of the key>`` =
``{kind, name, at}``, fenced by the leader's term, then the object. A repeat of
that create on any leader finds the mark and the object created after it (its
create revision is above the mark's), and answers as the first create did
instead of "already exists". Marks older than MARK_AGE are deleted by the next
keyed create.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time

from election.term import Term
from ha_sc.api.context import ApiContext
from ha_sc.kv.api import KeyExists, KeyNotFound, KvEntry, RevisionConflict

KIND = "requests"
MARK_AGE = 600.0
"""Seconds a mark is kept (wall clock: it must mean the same on every replica)."""


def mark_key(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode()).hexdigest()


async def created_by(ctx: ApiContext, idempotency_key: str, kind: str, name: str) -> KvEntry | None:
    """The object this key's earlier create stored, if it is still there."""
    kv = ctx.view.kv
    mark = await kv.get(KIND, mark_key(idempotency_key))
    if mark is None:
        return None
    try:
        doc = json.loads(mark.value)
    except ValueError:
        return None
    if not isinstance(doc, dict) or (doc.get("kind"), doc.get("name")) != (kind, name):
        return None
    entry = await kv.get(kind, name)
    if entry is None or entry.create_revision <= mark.create_revision:
        return None
    return entry


async def mark(ctx: ApiContext, term: Term, idempotency_key: str, kind: str, name: str) -> None:
    """Store the mark of a keyed create (before the object); prune old marks."""
    kv = ctx.view.kv
    now = time.time()
    value = json.dumps({"kind": kind, "name": name, "at": now}, sort_keys=True).encode()
    key = mark_key(idempotency_key)
    try:
        await kv.create(KIND, key, value, guard=term.guard)
    except KeyExists:
        earlier = await kv.get(KIND, key)
        if earlier is not None:
            with contextlib.suppress(KeyNotFound, RevisionConflict):
                await kv.delete(KIND, key, expected_revision=earlier.revision, guard=term.guard)
        await kv.create(KIND, key, value, guard=term.guard)
    for entry in (await kv.list(KIND)).entries:
        if _age(entry, now) > MARK_AGE:
            with contextlib.suppress(KeyNotFound, RevisionConflict):
                await kv.delete(KIND, entry.key, expected_revision=entry.revision, guard=term.guard)


def _age(entry: KvEntry, now: float) -> float:
    try:
        at = json.loads(entry.value).get("at")
    except (ValueError, AttributeError):
        return float("inf")
    return now - at if isinstance(at, int | float) else float("inf")
