"""``ConsumerRecord``, and a batch payload decoded straight into them.

The decoding walks the layout of ``record_codec`` (keyless records in one step) and
makes one tuple per record: a consumer's cost per record is mostly this loop. The
cyclic garbage collector is paused for the loop (if it was running): the tuples made
hold only bytes and ints, so the collections their allocation would trigger find
nothing, and they cost about 40% of the decoding.
"""

from __future__ import annotations

import gc
import struct
from typing import NamedTuple

from ha_sc.protocol.record_batch import Buffer, MalformedBatch

_KEYLESS = struct.Struct(">iI")
_VALUE_LENGTH = struct.Struct(">I")
_NO_KEY = -1


class ConsumerRecord(NamedTuple):
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    """When the producer opened the record's batch (ms since the epoch)."""


def decode_batch_records(
    payload: Buffer, *, partition: int, base_offset: int, timestamp_ms: int
) -> list[ConsumerRecord]:
    """The records of one batch payload, numbered from ``base_offset``; raises
    MalformedBatch if the payload is cut or holds a bad length."""
    collecting = gc.isenabled()
    if collecting:
        gc.disable()
    try:
        return _decode(bytes(payload), partition, base_offset, timestamp_ms)
    finally:
        if collecting:
            gc.enable()


def _decode(
    data: bytes, partition: int, base_offset: int, timestamp_ms: int
) -> list[ConsumerRecord]:
    size = len(data)
    records: list[ConsumerRecord] = []
    append = records.append
    unpack = _KEYLESS.unpack_from
    make = tuple.__new__
    cls = ConsumerRecord
    position = 0
    at = base_offset
    try:
        while position < size:
            key_length, value_length = unpack(data, position)
            if key_length == _NO_KEY:
                position += 8
                end = position + value_length
                append(make(cls, (partition, at, None, data[position:end], timestamp_ms)))
            elif key_length < 0:
                raise MalformedBatch(f"record {at - base_offset}: key length {key_length}")
            else:
                position += 4
                key = data[position : position + key_length]
                position += key_length
                (value_length,) = _VALUE_LENGTH.unpack_from(data, position)
                position += 4
                end = position + value_length
                append(make(cls, (partition, at, key, data[position:end], timestamp_ms)))
            position = end
            at += 1
    except struct.error:
        raise MalformedBatch(
            f"record {at - base_offset}: payload ends inside a length field"
        ) from None
    if position != size:
        raise MalformedBatch(f"record {at - base_offset - 1}: runs past the end of the payload")
    return records
