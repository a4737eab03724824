"""Sends controller actions to the KV fenced by the leader's guard: one write each, or a
batch of them as one KV batch write (``KvStore.write_batch``)."""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping, Sequence

from opentelemetry.context import Context

from election.guard import Guard
from ha_sc.controllers.actions import Action, CreateObject, DeleteObject, UpdateSpec, UpdateStatus
from ha_sc.kv.api import (
    BatchOp,
    CreateOp,
    DeleteOp,
    KeyExists,
    KeyNotFound,
    KvError,
    KvStore,
    RevisionConflict,
    UpdateOp,
)
from ha_sc.model.codec import encode_value
from ha_sc.store import GlobalStore
from ha_sc.telemetry.tracing_spans import fenced_write

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    STALE = "stale"
    """The object changed (or vanished) since the reducer read it; the next pass decides
    again from the newer object the watch brings."""


class ActionWriter:
    """Applies actions; a StaleGuard (leadership lost) propagates to the caller."""

    def __init__(self, kv: KvStore, cache: GlobalStore) -> None:
        self._kv = kv
        self._cache = cache

    async def apply(
        self,
        action: Action,
        guard: Guard,
        *,
        log_level: int = logging.INFO,
        parent: Context | None = None,
    ) -> Outcome:
        """Write ``action`` fenced by ``guard``, traced as a child of ``parent`` (the
        reconcile that decided it) or of the current span."""
        try:
            with fenced_write(
                _OPS[type(action)], action.kind.value, action.key, guard.epoch, parent=parent
            ) as span:
                span.set_attribute("revision", await self._write(action, guard))
        except (KeyExists, KeyNotFound, RevisionConflict) as stale:
            log.debug("skipped %s: %s", type(action).__name__, stale)
            return Outcome.STALE
        _log_applied(action, guard, log_level)
        return Outcome.APPLIED

    async def apply_batch(
        self,
        actions: Sequence[Action],
        guard: Guard,
        *,
        log_level: int = logging.INFO,
        parents: Mapping[int, Context] | None = None,
    ) -> list[Outcome]:
        """Write ``actions`` (on distinct keys) as one KV batch fenced by ``guard``; an
        outcome per action, in order. Each action keeps its own span (a child of its
        reconcile in ``parents``, by ``id``) with the batch's size on it; a StaleGuard
        (leadership lost) propagates, as does KvUnavailable."""
        parents = parents or {}
        ops = [self._op(action) for action in actions]
        writes = [
            fenced_write(
                _OPS[type(action)],
                action.kind.value,
                action.key,
                guard.epoch,
                parent=parents.get(id(action)),
            )
            for action in actions
        ]
        spans = [write.__enter__() for write in writes]
        for span in spans:
            span.set_attribute("batch", len(actions))
        sent = [op for op in ops if not isinstance(op, KvError)]
        try:
            answers = iter(await self._kv.write_batch(sent, guard=guard) if sent else [])
        except BaseException as failed:  # every span ends with it (StaleGuard, KvUnavailable)
            for write in writes:
                write.__exit__(type(failed), failed, failed.__traceback__)
            raise
        outcomes: list[Outcome] = []
        for action, op, write, span in zip(actions, ops, writes, spans, strict=True):
            answer = op if isinstance(op, KvError) else next(answers)
            if isinstance(answer, KvError):
                write.__exit__(type(answer), answer, None)  # the span ends with the refusal
                log.debug("skipped %s: %s", type(action).__name__, answer)
                outcomes.append(Outcome.STALE)
                continue
            span.set_attribute("revision", answer)
            write.__exit__(None, None, None)
            _log_applied(action, guard, log_level)
            outcomes.append(Outcome.APPLIED)
        return outcomes

    def _op(self, action: Action) -> BatchOp | RevisionConflict:
        """The KV op that carries ``action``; a RevisionConflict if the cache already
        holds a newer object than the reducer read."""
        kind = action.kind.value
        if isinstance(action, CreateObject):
            return CreateOp(
                kind, action.key, encode_value(action.spec, action.status, action.owner)
            )
        if isinstance(action, DeleteObject):
            return DeleteOp(kind, action.key, action.revision)
        current = self._cache.view(action.kind).get(action.key)
        if current is None or current.meta.revision != action.revision:
            return RevisionConflict(
                kind, action.key, action.revision, 0 if current is None else current.meta.revision
            )
        if isinstance(action, UpdateSpec):
            value = encode_value(action.spec, current.status, current.meta.owner)
        else:
            value = encode_value(current.spec, action.status, current.meta.owner)
        return UpdateOp(kind, action.key, value, action.revision)

    async def _write(self, action: Action, guard: Guard) -> int:
        """The revision the write landed at."""
        op = self._op(action)
        if isinstance(op, KvError):
            raise op
        if isinstance(op, CreateOp):
            return await self._kv.create(op.kind, op.key, op.value, guard=guard)
        if isinstance(op, DeleteOp):
            return await self._kv.delete(
                op.kind, op.key, expected_revision=op.expected_revision, guard=guard
            )
        return await self._kv.update(
            op.kind, op.key, op.value, expected_revision=op.expected_revision, guard=guard
        )


def _log_applied(action: Action, guard: Guard, log_level: int) -> None:
    if isinstance(action, DeleteObject) and action.reason is not None:
        log.info(
            "%s %s %s; deleted (epoch %d)",
            action.kind.value.removesuffix("s"),
            action.key,
            action.reason,
            guard.epoch,
        )
        return
    log.log(
        log_level,
        "%s %s/%s (epoch %d)",
        _verb(action),
        action.kind.value,
        action.key,
        guard.epoch,
    )


_OPS: dict[type[Action], str] = {
    CreateObject: "create",
    UpdateSpec: "update spec",
    UpdateStatus: "update status",
    DeleteObject: "delete",
}
"""The write's name in its span."""


def _verb(action: Action) -> str:
    if isinstance(action, CreateObject):
        return "created"
    if isinstance(action, DeleteObject):
        return "deleted"
    if isinstance(action, UpdateSpec):
        return "updated spec of"
    assert isinstance(action, UpdateStatus)
    return f"set status {getattr(action.status, 'resolution', '')} of"
