"""Which request created an object, kept in the KV so any leader can tell.

The in-memory ledger (``idempotency``) answers a repeated key on the replica that
saw it first; a repeat that reaches a new leader after a failover finds nothing
there. So a keyed create stores a mark, ``requests/<digest of the key>`` =
``{kind, name, at}``, fenced by the leader's term, and the object after it, both in
one batch write (``create_marked``: one round trip). A repeat of that create on any
leader finds the mark and the object created with or after it (its create revision
is at least the mark's: an etcd transaction gives its writes one revision), and
answers as the first create did instead of "already exists". Marks older than
MARK_AGE are deleted by a keyed create, at most every PRUNE_EVERY seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Sequence

from election.guard import Guard
from ha_sc.kv.api import (
    CreateOp,
    KeyExists,
    KeyNotFound,
    KvEntry,
    KvError,
    KvStore,
    RevisionConflict,
)

log = logging.getLogger(__name__)

KIND = "requests"
MARK_AGE = 600.0
"""Seconds a mark is kept (wall clock: it must mean the same on every replica)."""
PRUNE_EVERY = 60.0
"""Seconds between prunings of a replica's keyed creates: a mark lives at most
MARK_AGE + PRUNE_EVERY, and a create does not list every mark."""
_RENAME_ATTEMPTS = 3


def mark_key(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode()).hexdigest()


async def created_by(kv: KvStore, idempotency_key: str, kind: str, name: str) -> KvEntry | None:
    """The object this key's earlier create stored, if it is still there."""
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
    if entry is None or entry.create_revision < mark.create_revision:
        return None
    return entry


async def create_marked(
    kv: KvStore,
    guard: Guard,
    idempotency_key: str,
    kind: str,
    name: str,
    value: bytes,
    *,
    beside: Sequence[CreateOp] = (),
    prune: bool = True,
) -> int:
    """Store a keyed create: its mark, then the object and the creates ``beside`` it (a
    topic's partitions), in one batch write fenced by ``guard``; the object's create
    revision (a create ``beside`` that is refused is left to the controllers). Raises
    KeyExists when the object exists (the mark then names an object this key did not
    create, which ``created_by`` tells apart by revision).

    A mark of this key already stored (the key used for another create within
    MARK_AGE) is renamed to this object after the batch: an update keeps its create
    revision, which stays below the object's. ``prune``: delete the marks older than
    MARK_AGE too (a listing of every mark; the caller spaces it out)."""
    key = mark_key(idempotency_key)
    now = time.time()
    marked, created, *_ = await kv.write_batch(
        [CreateOp(KIND, key, _mark_value(kind, name, now)), CreateOp(kind, name, value), *beside],
        guard=guard,
    )
    if isinstance(created, KvError):
        raise created
    if isinstance(marked, KeyExists):
        await _rename(kv, guard, key, _mark_value(kind, name, now))
    elif isinstance(marked, KvError):
        log.info("request mark %s was not stored (%s)", key[:12], marked)
    if prune:
        await _prune(kv, guard, now)
    return created


async def _rename(kv: KvStore, guard: Guard, key: str, value: bytes) -> None:
    """Point the stored mark ``key`` at the object just created."""
    for _ in range(_RENAME_ATTEMPTS):
        earlier = await kv.get(KIND, key)
        try:
            if earlier is None:
                await kv.create(KIND, key, value, guard=guard)
            else:
                await kv.update(KIND, key, value, expected_revision=earlier.revision, guard=guard)
        except (KeyExists, RevisionConflict):
            continue
        return
    log.info("request mark %s kept changing: left naming an earlier create", key[:12])


async def mark(kv: KvStore, guard: Guard, idempotency_key: str, kind: str, name: str) -> None:
    """Store the mark of a keyed create (before the object); prune old marks."""
    now = time.time()
    value = _mark_value(kind, name, now)
    key = mark_key(idempotency_key)
    try:
        await kv.create(KIND, key, value, guard=guard)
    except KeyExists:
        earlier = await kv.get(KIND, key)
        if earlier is not None:
            with contextlib.suppress(KeyNotFound, RevisionConflict):
                await kv.delete(KIND, key, expected_revision=earlier.revision, guard=guard)
        await kv.create(KIND, key, value, guard=guard)
    await _prune(kv, guard, now)


def _mark_value(kind: str, name: str, now: float) -> bytes:
    return json.dumps({"kind": kind, "name": name, "at": now}, sort_keys=True).encode()


async def _prune(kv: KvStore, guard: Guard, now: float) -> None:
    """Delete the marks older than MARK_AGE."""
    for entry in (await kv.list(KIND)).entries:
        if _age(entry, now) > MARK_AGE:
            with contextlib.suppress(KeyNotFound, RevisionConflict):
                await kv.delete(KIND, entry.key, expected_revision=entry.revision, guard=guard)


def _age(entry: KvEntry, now: float) -> float:
    try:
        at = json.loads(entry.value).get("at")
    except (ValueError, AttributeError):
        return float("inf")
    return now - at if isinstance(at, int | float) else float("inf")
