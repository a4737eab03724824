"""A new leader's catch-up: write a progress mark per kind, wait for the cache to apply them.

Once every kind's cache has applied the mark this leader wrote under its own
epoch, the cache reflects every change committed before the leader won (the
marks come after them in the store's order), whatever the store's size. See
``ha_sc.store.progress``.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel, ConfigDict, Field, model_validator

from election.term import Term
from ha_sc.controllers.settings import SECONDS
from ha_sc.kv.api import KeyExists, KvStore, KvUnavailable, RevisionConflict
from ha_sc.model.kinds import Kind
from ha_sc.store import GlobalStore
from ha_sc.store.progress import PROGRESS_KEY, progress_value
from ha_sc.telemetry.tracing_spans import fenced_write

log = logging.getLogger("ha_sc.sc")


class CatchUpSettings(BaseModel):
    """How a new leader writes its progress marks and waits for them (the ``catch_up``
    group of the settings tree)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    mark_wait: float = Field(default=5.0, gt=0, json_schema_extra=SECONDS)
    """How long the watch may take to bring the marks back before the dispatchers
    re-list instead (seconds): a watch delivers in milliseconds, so 5 s means it is
    stuck, and a re-list of a large store costs seconds too."""
    retry_initial: float = Field(default=0.05, gt=0, json_schema_extra=SECONDS)
    """Wait before writing a mark again when the store is unavailable (seconds); it
    doubles with each failure: 50 ms retries a Raft election's gap at once."""
    retry_max: float = Field(default=0.5, gt=0, json_schema_extra=SECONDS)
    """The longest wait between two attempts at a mark (seconds): half a second keeps
    a new leader's start prompt once the store is back."""

    @model_validator(mode="after")
    def _retries_ordered(self) -> CatchUpSettings:
        if self.retry_initial > self.retry_max:
            raise ValueError(
                f"catch_up.retry_initial {self.retry_initial:g} s must not exceed "
                f"catch_up.retry_max {self.retry_max:g} s"
            )
        return self


_DEFAULT = CatchUpSettings()


async def write_mark(
    kv: KvStore, kind: Kind, term: Term, replica: str, settings: CatchUpSettings = _DEFAULT
) -> int:
    """Write this term's progress mark for ``kind``; returns the mark's revision.

    Raises StaleGuard once a newer epoch leads; retries while the KV is unreachable.
    """
    value = progress_value(term.epoch, replica)
    delay = settings.retry_initial
    while True:
        try:
            with fenced_write("progress mark", kind.value, PROGRESS_KEY, term.epoch):
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
            delay = min(delay * 2, settings.retry_max)


async def catch_up(
    kv: KvStore,
    cache: GlobalStore,
    term: Term,
    replica: str,
    settings: CatchUpSettings = _DEFAULT,
) -> int:
    """Return once the cache reflects the store as of this term's win; returns the
    highest mark revision."""
    marks = {kind: await write_mark(kv, kind, term, replica, settings) for kind in Kind}
    highest = max(marks.values())
    try:
        async with asyncio.timeout(settings.mark_wait):
            await cache.wait_for_marks(marks)
    except TimeoutError:
        log.warning(
            "epoch=%d: marks not seen through the watch within %.0f s; re-listing",
            term.epoch,
            settings.mark_wait,
        )
        await cache.wait_for_revision(highest)
    return highest
