"""Sends controller actions to the KV, each as one write fenced by the leader's guard."""

from __future__ import annotations

import enum
import logging

from opentelemetry.context import Context

from election.guard import Guard
from ha_sc.controllers.actions import Action, CreateObject, DeleteObject, UpdateSpec, UpdateStatus
from ha_sc.kv.api import KeyExists, KeyNotFound, KvStore, RevisionConflict
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
        if isinstance(action, DeleteObject) and action.reason is not None:
            log.info(
                "%s %s %s; deleted (epoch %d)",
                action.kind.value.removesuffix("s"),
                action.key,
                action.reason,
                guard.epoch,
            )
            return Outcome.APPLIED
        log.log(
            log_level,
            "%s %s/%s (epoch %d)",
            _verb(action),
            action.kind.value,
            action.key,
            guard.epoch,
        )
        return Outcome.APPLIED

    async def _write(self, action: Action, guard: Guard) -> int:
        """The revision the write landed at."""
        kind = action.kind.value
        if isinstance(action, CreateObject):
            value = encode_value(action.spec, action.status, action.owner)
            return await self._kv.create(kind, action.key, value, guard=guard)
        if isinstance(action, DeleteObject):
            return await self._kv.delete(
                kind, action.key, expected_revision=action.revision, guard=guard
            )
        current = self._cache.view(action.kind).get(action.key)
        if current is None or current.meta.revision != action.revision:
            raise RevisionConflict(
                kind, action.key, action.revision, 0 if current is None else current.meta.revision
            )
        if isinstance(action, UpdateSpec):
            value = encode_value(action.spec, current.status, current.meta.owner)
        else:
            value = encode_value(current.spec, action.status, current.meta.owner)
        return await self._kv.update(
            kind, action.key, value, expected_revision=action.revision, guard=guard
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
