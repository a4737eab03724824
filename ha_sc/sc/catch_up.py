"""A new leader's catch-up: write a progress mark per kind (in one batch), wait for the
cache to apply them.

Once every kind's cache has applied the mark this leader wrote under its own
epoch, the cache reflects every change committed before the leader won (the
marks come after them in the store's order), whatever the store's size. See
``ha_sc.store.progress``.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import ExitStack

from pydantic import BaseModel, ConfigDict, Field, model_validator

from election.term import Term
from ha_sc.controllers.settings import SECONDS
from ha_sc.kv.api import (
    BatchOp,
    CreateOp,
    KeyExists,
    KvStore,
    KvUnavailable,
    RevisionConflict,
    UpdateOp,
)
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


async def write_marks(
    kv: KvStore, term: Term, replica: str, settings: CatchUpSettings = _DEFAULT
) -> dict[Kind, int]:
    """Write this term's progress mark of every kind in one fenced batch (one Raft
    command, one etcd transaction); returns each mark's revision.

    A mark another write moved between read and batch is read and written again.
    Raises StaleGuard once a newer epoch leads; retries while the KV is unreachable.
    """
    value = progress_value(term.epoch, replica)
    marks: dict[Kind, int] = {}
    delay = settings.retry_initial
    while len(marks) < len(Kind):
        pending = [kind for kind in Kind if kind not in marks]
        try:
            with ExitStack() as spans:
                ops: list[BatchOp] = []
                for kind in pending:
                    spans.enter_context(
                        fenced_write("progress mark", kind.value, PROGRESS_KEY, term.epoch)
                    )
                    entry = await kv.get(kind.value, PROGRESS_KEY)
                    ops.append(
                        CreateOp(kind.value, PROGRESS_KEY, value)
                        if entry is None
                        else UpdateOp(kind.value, PROGRESS_KEY, value, entry.revision)
                    )
                outcomes = await kv.write_batch(ops, guard=term.guard)
        except KvUnavailable as exc:
            log.warning("epoch=%d: KV unavailable writing the marks: %s", term.epoch, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.retry_max)
            continue
        for kind, outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, int):
                marks[kind] = outcome
            elif not isinstance(outcome, KeyExists | RevisionConflict):
                raise outcome
    return marks


async def catch_up(
    kv: KvStore,
    cache: GlobalStore,
    term: Term,
    replica: str,
    settings: CatchUpSettings = _DEFAULT,
) -> int:
    """Return once the cache reflects the store as of this term's win; returns the
    highest mark revision."""
    marks = await write_marks(kv, term, replica, settings)
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
