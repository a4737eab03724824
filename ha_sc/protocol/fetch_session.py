"""The bodies of a replica fetch session's frames (``replica_session_fetch`` and its
``replica_session_result``, protocol/data.py), sans-IO.

A follower SPU fetches every partition it follows from one leader SPU in one session
(as Kafka's incremental fetch sessions, KIP-227): its first fetch lists every
partition with its fetch offset (its LEO) and generation, later ones only what changed
(partitions added, offsets that moved, partitions to forget). The answer lists only the
partitions with something to say (records, a newer HW, an error), each with the size of
its records, which follow the list back to back:

    fetch body:  JSON {"fetch": [[key, offset, generation or null], ...],
                       "forget": [key, ...]}
    answer body: u32 length of the list (big-endian), the list as JSON
                 [[key, offset, hw, leo, log_start, size, error code or null,
                   error message or null], ...],
                 then each listed partition's ``size`` bytes of record batches

A partition is named by its key, ``<topic>-<partition>``. The lists are checked once
here (pydantic), so what the session code gets is well formed: it then uses plain
tuples and slotted dataclasses on its hot path.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ha_sc.protocol.data import DataError, ErrorCode

_U32 = struct.Struct(">I")

NonNegative = Annotated[int, Field(ge=0)]
PartitionFetch = tuple[str, int, int | None]
"""A partition to fetch: its key, the follower's fetch offset (its LEO) and the
partition's generation (None: not known)."""


class MalformedSessionBody(ValueError):
    """A session frame's body that is not what this module writes."""


class _Changes(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    fetch: list[tuple[str, NonNegative, int | None]] = []
    forget: list[str] = []


_CHANGES: TypeAdapter[_Changes] = TypeAdapter(_Changes)
_ANSWERS: TypeAdapter[list[Any]] = TypeAdapter(
    list[
        tuple[
            str,
            NonNegative,
            NonNegative,
            NonNegative,
            NonNegative,
            NonNegative,
            ErrorCode | None,
            str | None,
        ]
    ]
)


@dataclass(frozen=True, slots=True)
class SessionChanges:
    """What one session fetch tells the leader."""

    fetch: Sequence[PartitionFetch] = ()
    """Partitions to fetch from the offsets given: new ones, or ones whose offset moved."""
    forget: Sequence[str] = ()
    """Partitions the follower no longer fetches from this leader."""


def encode_changes(changes: SessionChanges) -> bytes:
    document = {"fetch": list(changes.fetch), "forget": list(changes.forget)}
    return json.dumps(document, separators=(",", ":")).encode()


def decode_changes(body: bytes) -> SessionChanges:
    """The changes ``body`` carries; raises MalformedSessionBody."""
    if not body:
        return SessionChanges()
    try:
        changes = _CHANGES.validate_json(body)
    except ValidationError as exc:
        problem = f"invalid session fetch body: {exc.error_count()} errors"
        raise MalformedSessionBody(problem) from exc
    return SessionChanges(fetch=changes.fetch, forget=changes.forget)


@dataclass(slots=True)
class PartitionAnswer:
    """One partition in a session answer: the leader's offsets, and either records (from
    ``offset``, ``size`` bytes) or an error."""

    key: str
    offset: int
    """The fetch offset the records start from (the one the leader's session holds)."""
    hw: int
    leo: int
    log_start: int
    data: bytes = field(default=b"", repr=False)
    error: DataError | None = None


def encode_answers(answers: Sequence[PartitionAnswer]) -> list[bytes]:
    """The answer body's pieces, to send in order (the records are not copied)."""
    listing = [
        [
            a.key,
            a.offset,
            a.hw,
            a.leo,
            a.log_start,
            len(a.data),
            None if a.error is None else a.error.code.value,
            None if a.error is None else a.error.message,
        ]
        for a in answers
    ]
    head = json.dumps(listing, separators=(",", ":")).encode()
    return [_U32.pack(len(head)), head, *(a.data for a in answers if a.data)]


def decode_answers(body: bytes) -> list[PartitionAnswer]:
    """The partitions ``body`` answers for; raises MalformedSessionBody."""
    if len(body) < _U32.size:
        raise MalformedSessionBody("session answer body too short")
    (length,) = _U32.unpack_from(body)
    end = _U32.size + length
    if end > len(body):
        raise MalformedSessionBody("session answer list runs past the body")
    try:
        listing = _ANSWERS.validate_json(body[_U32.size : end])
    except ValidationError as exc:
        raise MalformedSessionBody(f"invalid session answer: {exc.error_count()} errors") from exc
    answers: list[PartitionAnswer] = []
    position = end
    for key, offset, hw, leo, log_start, size, code, message in listing:
        data = body[position : position + size]
        if len(data) != size:
            raise MalformedSessionBody(f"{key}: {size} bytes of records announced, body ends")
        position += size
        error = None if code is None else DataError(code=code, message=message or "")
        answers.append(PartitionAnswer(key, offset, hw, leo, log_start, data, error))
    if position != len(body):
        raise MalformedSessionBody("bytes after the last partition's records")
    return answers
