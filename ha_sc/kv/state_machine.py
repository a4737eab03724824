"""The KV as a deterministic state machine, shared by the memory and Raft backends.

Every mutating method is a pure function of the current state and its
arguments, so N Raft replicas applying the same log reach the same state. Each
changed key gets its own revision; the last ``history_size`` changes are kept
for watches, older ones count as compacted. Fencing is checked by the caller
against its lease table in the same atomic step (``check_guard``), since the
lease table is replicated separately from the objects.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json

from election.guard import Guard
from election.lease_table import LeaseTable
from ha_sc.kv.api import (
    BatchOp,
    BatchOutcomes,
    CreateOp,
    Events,
    EventType,
    KeyExists,
    KeyNotFound,
    KvEntry,
    Listing,
    RevisionCompacted,
    RevisionConflict,
    StaleGuard,
    UpdateOp,
    WatchEvent,
)

ObjectId = tuple[str, str]


def check_guard(leases: LeaseTable, guard: Guard | None) -> None:
    """Refuse a fenced write whose epoch is no longer the election's current one."""
    if guard is not None and not leases.is_current(guard):
        raise StaleGuard(guard)


DEFAULT_HISTORY_SIZE = 200_000

CREATE, UPDATE, DELETE = "c", "u", "d"
OpRow = tuple[str, str, str, bytes, int | None]
"""A batch op as the Raft log carries it: (verb, kind, key, value, expected revision).
Plain tuples, so the log does not depend on class names and unpickles fast."""


def op_rows(ops: Sequence[BatchOp]) -> tuple[OpRow, ...]:
    """``ops`` in their log form."""
    rows: list[OpRow] = []
    for op in ops:
        if isinstance(op, CreateOp):
            rows.append((CREATE, op.kind, op.key, op.value, None))
        elif isinstance(op, UpdateOp):
            rows.append((UPDATE, op.kind, op.key, op.value, op.expected_revision))
        else:
            rows.append((DELETE, op.kind, op.key, b"", op.expected_revision))
    return tuple(rows)


def owner_of(value: bytes) -> ObjectId | None:
    """The (kind, key) a stored value names as its owner, if it names one.

    Every replica runs this on every put it applies, so it must answer alike
    everywhere and cheaply. ``parsed_json`` is json.loads's answer, in a third of
    the time."""
    try:
        document = parsed_json(value)
    except ValueError:
        return None
    owner = document.get("owner") if isinstance(document, dict) else None
    if isinstance(owner, dict):
        kind, key = owner.get("kind"), owner.get("key")
        if isinstance(kind, str) and isinstance(key, str):
            return (kind, key)
    return None


def parsed_json(value: bytes) -> Any:
    """``json.loads(value)``, parsed by pydantic-core's parser (jiter, some 3x faster)
    when it can: jiter is a strict RFC 8259 parser that, like json.loads, also takes
    NaN and Infinity and keeps the last of repeated keys. What it refuses (lone
    surrogate escapes, UTF-16/32 or a byte-order mark, deeper nesting than its limit)
    is parsed again by json.loads, so the answer, or the ValueError, is json.loads's
    (tests/unit/test_kv_state_machine.py compares the two on such values)."""
    try:
        return from_json(value)
    except ValueError:
        return json.loads(value)


@dataclass(slots=True)
class _Record:
    """One key's current value; replaced on every change, never changed in place."""

    value: bytes
    revision: int
    create_revision: int
    owner: ObjectId | None


class KvState:
    """Objects, revisions and watch history."""

    def __init__(self, *, history_size: int = DEFAULT_HISTORY_SIZE) -> None:
        self.revision = 0
        self.compacted = 0  # every revision <= this one is gone from the history
        self._objects: dict[str, dict[str, _Record]] = {}
        self._children: dict[ObjectId, set[ObjectId]] = {}
        self._history: deque[WatchEvent] = deque()
        self._history_size = history_size

    # reads

    def list(self, kind: str) -> Listing:
        return self.listing(kind)()

    def listing(self, kind: str) -> Callable[[], Listing]:
        """``list(kind)`` as of now, built when called.

        Only the copy of the kind's records made here needs the state to stand still
        (records are replaced on every change, never changed), so a replica that holds
        the state under a lock builds the 100k entries of a listing after releasing
        it, not while its Raft thread waits to apply and send heartbeats."""
        records = list(self._objects.get(kind, {}).items())
        revision = self.revision

        def build() -> Listing:
            entries = tuple(
                KvEntry(kind, key, r.value, r.revision, r.create_revision) for key, r in records
            )
            return Listing(entries, revision)

        return build

    def get(self, kind: str, key: str) -> KvEntry | None:
        record = self._objects.get(kind, {}).get(key)
        if record is None:
            return None
        return KvEntry(kind, key, record.value, record.revision, record.create_revision)

    def events_since(self, kind: str, start_revision: int) -> Events:
        """Changes of ``kind`` with revision >= ``start_revision`` still in the history."""
        if start_revision <= self.compacted:
            raise RevisionCompacted(start_revision, self.compacted)
        if start_revision > self.revision:
            return []
        # revisions in the history are consecutive: index straight to the start
        first = self._history[0].revision if self._history else self.revision + 1
        skip = max(0, start_revision - first)
        out: Events = []
        for index in range(skip, len(self._history)):
            event = self._history[index]
            if event.kind == kind:
                out.append(event)
        return out

    def fingerprint(self) -> str:
        """A digest of every object with its revisions, and of the store revision: two
        replicas with equal fingerprints hold the same contents."""
        digest = hashlib.sha256(f"{self.revision}:{self.compacted}".encode())
        for kind in sorted(self._objects):
            objects = self._objects[kind]
            for key in sorted(objects):
                r = objects[key]
                digest.update(f"|{kind}/{key}@{r.revision}/{r.create_revision}=".encode())
                digest.update(r.value)
        return digest.hexdigest()

    # writes

    def create(self, kind: str, key: str, value: bytes) -> int:
        if key in self._objects.get(kind, {}):
            raise KeyExists(kind, key)
        return self._put(kind, key, value, create_revision=None)

    def update(self, kind: str, key: str, value: bytes, expected_revision: int) -> int:
        record = self._objects.get(kind, {}).get(key)
        if record is None:
            raise KeyNotFound(kind, key)
        if record.revision != expected_revision:
            raise RevisionConflict(kind, key, expected_revision, record.revision)
        return self._put(kind, key, value, create_revision=record.create_revision)

    def delete(self, kind: str, key: str, expected_revision: int | None) -> int:
        record = self._objects.get(kind, {}).get(key)
        if record is None:
            raise KeyNotFound(kind, key)
        if expected_revision is not None and record.revision != expected_revision:
            raise RevisionConflict(kind, key, expected_revision, record.revision)
        self._delete_tree((kind, key))
        return self.revision

    def apply_batch(self, ops: Sequence[BatchOp]) -> BatchOutcomes:
        """Apply ``ops`` in order, each as its single write would be; an op refused for
        its own condition gets that KvError as its outcome and changes nothing, and the
        others still apply. Each changed key takes its own revision, as in a row of
        single writes, so a batch of n creates takes n consecutive revisions."""
        return self.apply_rows(op_rows(ops))

    def apply_rows(self, rows: Sequence[OpRow]) -> BatchOutcomes:
        """``apply_batch`` of ops in their log form (``op_rows``)."""
        outcomes: BatchOutcomes = []
        for verb, kind, key, value, expected in rows:
            try:
                if verb == CREATE:
                    outcomes.append(self.create(kind, key, value))
                elif verb == UPDATE:
                    assert expected is not None
                    outcomes.append(self.update(kind, key, value, expected))
                else:
                    outcomes.append(self.delete(kind, key, expected))
            except (KeyExists, KeyNotFound, RevisionConflict) as refused:
                outcomes.append(refused)
        return outcomes

    # internals

    def _put(self, kind: str, key: str, value: bytes, *, create_revision: int | None) -> int:
        self.revision += 1
        revision = self.revision
        objects = self._objects.setdefault(kind, {})
        previous = objects.get(key)
        if previous is not None and previous.owner is not None:
            self._children.get(previous.owner, set()).discard((kind, key))
        owner = owner_of(value)
        if owner is not None:
            children = self._children.get(owner)
            if children is None:
                children = self._children[owner] = set()
            children.add((kind, key))
        created = revision if create_revision is None else create_revision
        objects[key] = _Record(value, revision, created, owner)
        self._record(WatchEvent(EventType.PUT, kind, key, value, revision, created))
        return revision

    def _delete_tree(self, root: ObjectId) -> None:
        # children first, so a watcher never sees an orphan whose owner is gone
        for child in sorted(self._children.pop(root, set())):
            if child[1] in self._objects.get(child[0], {}):
                self._delete_tree(child)
        kind, key = root
        record = self._objects[kind].pop(key)
        if record.owner is not None:
            self._children.get(record.owner, set()).discard(root)
        self.revision += 1
        self._record(
            WatchEvent(EventType.DELETE, kind, key, b"", self.revision, record.create_revision)
        )

    def _record(self, event: WatchEvent) -> None:
        self._history.append(event)
        while len(self._history) > self._history_size:
            self.compacted = self._history.popleft().revision
