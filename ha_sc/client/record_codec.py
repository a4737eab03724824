"""Records inside a batch payload, encoded as fast as plain Python allows (decoded by
``consumer_record.py``).

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
        return prefix.join([b"", *values])  # prefix, value, prefix, ...: one copy
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
