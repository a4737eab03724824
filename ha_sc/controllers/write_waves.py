"""Applying one controller pass's actions: many at once, in the order that matters.

Writes on different objects do not depend on each other, and one at a time a
Raft or etcd round trip each (milliseconds) makes a 1000-partition topic take
seconds to create. So a pass's actions run in waves: a wave holds actions on
distinct keys and runs with as many writes outstanding as the write window allows
(``write_window``: it narrows when the store's commits slow down). A wave's actions go
in batch writes (``KvStore.write_batch``: a topic's partitions in one Raft command, or
in a few etcd transactions), each batch one write of the window. A topic's
action (its status, say Provisioned) starts a wave after everything before it,
and the partitions it creates right after it join that wave: the status and its
partitions go in one batch write, so a topic is provisioned in one round trip. Topics
next to each other (several created at once, each with its creates) share a wave.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping, Sequence

from opentelemetry.context import Context

from election.term import Term
from ha_sc.controllers.actions import Action, CreateObject
from ha_sc.controllers.write_window import WriteWindow
from ha_sc.controllers.writer import ActionWriter, Outcome
from ha_sc.kv.api import KvUnavailable, StaleGuard
from ha_sc.model.kinds import Kind

log = logging.getLogger(__name__)

IN_FLIGHT = 16
BATCH = 100
"""Actions per batch write, unless the caller says."""
LOG_EACH_UP_TO = 20
"""Waves larger than this log one summary line instead of a line per write."""


def waves(actions: Sequence[Action]) -> list[list[Action]]:
    """``actions`` cut into waves that may each run concurrently, in order: a topic's
    action waits for everything before it and starts a wave that the partitions it
    creates join; topics next to each other (several created at once, each followed by
    its creates) share that wave, and any other action after them starts a new one."""
    result: list[list[Action]] = []
    current: list[Action] = []
    keys: set[tuple[str, str]] = set()
    topic: str | None = None  # the topic whose group is open: its creates join it
    for action in actions:
        key = (action.kind.value, action.key)  # plain strings: an enum hashes in Python
        if action.kind is Kind.TOPIC:
            if current and (topic is None or key in keys):
                result.append(current)
                current, keys = [], set()
            current.append(action)
            keys.add(key)
            topic = action.key
            continue
        if topic is not None and not _created_by(action, topic):
            result.append(current)
            current, keys, topic = [], set(), None
        if key in keys:
            result.append(current)
            current, keys = [], set()
        current.append(action)
        keys.add(key)
    if current:
        result.append(current)
    return result


def _created_by(action: Action, topic: str) -> bool:
    owner = action.owner if isinstance(action, CreateObject) else None
    return owner is not None and owner.kind == Kind.TOPIC.value and owner.key == topic


async def apply_actions(
    writer: ActionWriter,
    actions: Sequence[Action],
    term: Term,
    *,
    window: WriteWindow | None = None,
    in_flight: int = IN_FLIGHT,
    batch: int = BATCH,
    parents: Mapping[int, Context] | None = None,
) -> None:
    """Apply ``actions`` under ``term``; stops starting writes once the term ends.

    ``window`` (kept across passes by the caller) sets how many writes are outstanding;
    without one, a fixed ``in_flight``. A wave goes in batch writes of up to ``batch``
    actions, each batch one write of the window (``batch`` 1: each action on its own).
    Raises StaleGuard when the KV refused a write for a newer epoch, KvUnavailable when
    a write could not be committed (the writes of its wave still waiting are cancelled).
    ``parents``: the trace context of each action's write, by the action's ``id``.
    """
    parents = parents or {}
    if window is None:
        window = WriteWindow(start=in_flight, limit=in_flight)
    for wave in waves(actions):
        if not term.is_valid():
            return
        if len(wave) == 1:
            async with window.slot():
                await writer.apply(wave[0], term.guard, parent=parents.get(id(wave[0])))
            continue
        await _apply_wave(writer, wave, term, window, batch, parents)


async def _apply_wave(
    writer: ActionWriter,
    wave: list[Action],
    term: Term,
    window: WriteWindow,
    batch: int,
    parents: Mapping[int, Context],
) -> None:
    quiet = len(wave) > LOG_EACH_UP_TO
    level = logging.DEBUG if quiet else logging.INFO
    outcomes: Counter[str] = Counter()

    async def one(chunk: list[Action]) -> None:
        async with window.slot():
            if not term.is_valid():  # re-checked before every write
                return
            if len(chunk) == 1:
                action = chunk[0]
                done = [
                    await writer.apply(
                        action, term.guard, log_level=level, parent=parents.get(id(action))
                    )
                ]
            else:
                done = await writer.apply_batch(chunk, term.guard, log_level=level, parents=parents)
            for action, outcome in zip(chunk, done, strict=True):
                if outcome is Outcome.APPLIED:
                    outcomes[f"{type(action).__name__} {action.kind.value}"] += 1

    async def worker() -> None:
        for chunk in pending:
            await one(chunk)

    chunks = [wave[start : start + batch] for start in range(0, len(wave), batch)]
    pending = iter(chunks)  # shared: each worker takes the next chunk not yet taken
    try:
        async with asyncio.TaskGroup() as group:
            for n in range(min(len(chunks), window.limit)):
                group.create_task(worker(), name=f"writer-{n}")
    except* StaleGuard as refused:
        raise refused.exceptions[0] from None
    except* KvUnavailable as unavailable:
        raise unavailable.exceptions[0] from None
    if quiet:
        done = ", ".join(f"{count} x {what}" for what, count in sorted(outcomes.items()))
        log.info(
            "applied %d of %d writes (epoch %d, window %d): %s",
            sum(outcomes.values()),
            len(wave),
            term.epoch,
            int(window.size),
            done,
        )
