"""The records inside a batch payload: client side only, the SPU never parses them.

Each record is length-prefixed, big-endian::

    key_length    i32   -1 for no key
    key           key_length bytes
    value_length  u32
    value         value_length bytes
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from ha_sc.protocol.record_batch import Buffer, MalformedBatch

_KEY_LENGTH = struct.Struct(">i")
_VALUE_LENGTH = struct.Struct(">I")
NO_KEY = -1


@dataclass(frozen=True, slots=True)
class Record:
    key: bytes | None
    value: bytes


def encode_records(records: Sequence[bytes | tuple[bytes | None, bytes]]) -> bytes:
    """The payload holding ``records``: values alone, or ``(key, value)`` pairs."""
    parts: list[bytes] = []
    for record in records:
        key, value = (None, record) if isinstance(record, bytes) else record
        if key is None:
            parts.append(_KEY_LENGTH.pack(NO_KEY))
        else:
            parts.append(_KEY_LENGTH.pack(len(key)))
            parts.append(key)
        parts.append(_VALUE_LENGTH.pack(len(value)))
        parts.append(value)
    return b"".join(parts)


def decode_records(payload: Buffer) -> list[Record]:
    """The records in a batch payload."""
    view = memoryview(payload)
    records: list[Record] = []
    position = 0
    while position < len(view):
        key_length = _unpack(_KEY_LENGTH, view, position, len(records))
        position += _KEY_LENGTH.size
        key: bytes | None = None
        if key_length != NO_KEY:
            if key_length < 0:
                raise MalformedBatch(f"record {len(records)}: key length {key_length}")
            key = _take(view, position, key_length, len(records), "key")
            position += key_length
        value_length = _unpack(_VALUE_LENGTH, view, position, len(records))
        position += _VALUE_LENGTH.size
        value = _take(view, position, value_length, len(records), "value")
        position += value_length
        records.append(Record(key, value))
    return records


def _unpack(layout: struct.Struct, view: memoryview, position: int, index: int) -> int:
    if position + layout.size > len(view):
        raise MalformedBatch(f"record {index}: payload ends inside a length field")
    (value,) = layout.unpack_from(view, position)
    return int(value)


def _take(view: memoryview, position: int, length: int, index: int, what: str) -> bytes:
    if position + length > len(view):
        raise MalformedBatch(
            f"record {index}: {what} of {length} bytes, only {len(view) - position} left"
        )
    return bytes(view[position : position + length])
