"""Records inside a batch payload, encoded and decoded as fast as plain Python allows.

The layout is the one ``ha_sc/spu/storage/records.py`` defines (``key_length i32``, -1
for no key; ``key``; ``value_length u32``; ``value``), and the bytes are the same as its
``encode_records``; these functions only do the work with fewer Python steps per record:
the 8-byte prefix of a keyless record depends only on the value's length, so it is
built once per length and the payload is one ``bytes.join``.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence

from ha_sc.spu.storage.batch import Buffer, MalformedBatch

_KEYLESS = struct.Struct(">iI")
_KEY_LENGTH = struct.Struct(">i")
_VALUE_LENGTH = struct.Struct(">I")
_NO_KEY = -1
RECORD_OVERHEAD = _KEYLESS.size
"""Bytes a record adds to the payload besides its key and value."""


class _KeylessPrefixes(dict[int, bytes]):
    """The prefix of a keyless record by value length, made on first use."""

    def __missing__(self, length: int) -> bytes:
        prefix = _KEYLESS.pack(_NO_KEY, length)
        if len(self) < 4096:
            self[length] = prefix
        return prefix


_PREFIXES = _KeylessPrefixes()


def encode_values(values: Sequence[bytes]) -> bytes:
    """The payload of keyless records."""
    if not values:
        return b""
    lengths = set(map(len, values))
    if len(lengths) == 1:
        prefix = _PREFIXES[lengths.pop()]
        return prefix + prefix.join(values)
    prefixes = map(_PREFIXES.__getitem__, map(len, values))
    return b"".join(itertools.chain.from_iterable(zip(prefixes, values, strict=True)))


def encode_pairs(keys: Sequence[bytes | None], values: Sequence[bytes]) -> bytes:
    """The payload of records with keys (``None`` for a record without one)."""
    parts: list[bytes] = []
    append = parts.append
    for key, value in zip(keys, values, strict=True):
        if key is None:
            append(_PREFIXES[len(value)])
        else:
            append(_KEY_LENGTH.pack(len(key)))
            append(key)
            append(_VALUE_LENGTH.pack(len(value)))
        append(value)
    return b"".join(parts)


def decode_payload(payload: Buffer) -> list[tuple[bytes | None, bytes]]:
    """The ``(key, value)`` records of a payload; raises MalformedBatch if it is cut."""
    data = bytes(payload)
    size = len(data)
    records: list[tuple[bytes | None, bytes]] = []
    append = records.append
    unpack_keyless = _KEYLESS.unpack_from
    unpack_value = _VALUE_LENGTH.unpack_from
    position = 0
    try:
        while position < size:
            key_length, value_length = unpack_keyless(data, position)
            if key_length == _NO_KEY:
                position += 8
                end = position + value_length
                append((None, data[position:end]))
            elif key_length < 0:
                raise MalformedBatch(f"record {len(records)}: key length {key_length}")
            else:
                position += 4
                key = data[position : position + key_length]
                position += key_length
                (value_length,) = unpack_value(data, position)
                position += 4
                end = position + value_length
                append((key, data[position:end]))
            position = end
    except struct.error:
        raise MalformedBatch(f"record {len(records)}: payload ends inside a length field") from None
    if position != size:
        raise MalformedBatch(
            f"record {len(records) - 1}: runs {position - size} bytes past the end"
        )
    return records
