"""A new leader's catch-up: write a progress mark per kind, wait for the cache to apply them.

Once every kind's cache has applied the mark this leader wrote under its own
epoch, the cache reflects every change committed before the leader won (the
marks come after them in the store's order), whatever the store's size. See
``ha_sc.store.progress``.
"""

from __future__ import annotations

import asyncio
import logging

from election.term import Term
from ha_sc.kv.api import KeyExists, KvStore, KvUnavailable, RevisionConflict
from ha_sc.model.kinds import Kind
from ha_sc.store import GlobalStore
from ha_sc.store.progress import PROGRESS_KEY, progress_value

log = logging.getLogger("ha_sc.sc")

RETRY_FIRST = 0.05
RETRY_MAX = 0.5
MARK_WAIT = 5.0
"""How long the watch may take to bring a mark before the dispatchers re-list instead."""


async def write_mark(kv: KvStore, kind: Kind, term: Term, replica: str) -> int:
    """Write this term's progress mark for ``kind``; returns the mark's revision.

    Raises StaleGuard once a newer epoch leads; retries while the KV is unreachable.
    """
    value = progress_value(term.epoch, replica)
    delay = RETRY_FIRST
    while True:
        try:
            entry = await kv.get(kind.value, PROGRESS_KEY)
            if entry is None:
                return await kv.create(kind.value, PROGRESS_KEY, value, guard=term.guard)
            return await kv.update(
                kind.value,
                PROGRESS_KEY,
                value,
                expected_revision=entry.revision,
                guard=term.guard,
            )
        except (KeyExists, RevisionConflict):
            continue  # another mark landed between read and write: read again
        except KvUnavailable as exc:
            log.warning("epoch=%d: KV unavailable writing the %s mark: %s", term.epoch, kind, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)


async def catch_up(kv: KvStore, cache: GlobalStore, term: Term, replica: str) -> int:
    """Return once the cache reflects the store as of this term's win; returns the
    highest mark revision."""
    marks = {kind: await write_mark(kv, kind, term, replica) for kind in Kind}
    highest = max(marks.values())
    try:
        async with asyncio.timeout(MARK_WAIT):
            await cache.wait_for_marks(marks)
    except TimeoutError:
        log.warning(
            "epoch=%d: marks not seen through the watch within %.0f s; re-listing",
            term.epoch,
            MARK_WAIT,
        )
        await cache.wait_for_revision(highest)
    return highest
