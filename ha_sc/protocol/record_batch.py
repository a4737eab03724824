"""The record batch: a fixed header and an opaque payload, as it travels and as it is stored.

Sans-IO. All integers are big-endian::

     0  magic             2s   b"hb"
     2  version           u8   1
     3  attributes        u8   0 (reserved)
     4  crc               u32  zlib.crc32 of bytes 16..end (every field after
                               base_offset, then the payload)
     8  base_offset       u64  offset of the first record; set by the leader
    16  record_count      u32  >= 1; the batch holds offsets base .. base+count-1
    20  payload_length    u32
    24  first_timestamp   i64  ms since the epoch
    32  max_timestamp     i64  ms since the epoch
    40  producer_id       u64  NO_PRODUCER (0) when not idempotent
    48  base_sequence     i64  NO_SEQUENCE (-1) when not idempotent
    56  payload           the records, encoded by the client (see ``records.py``)

The crc leaves out magic, version, attributes and base_offset, so the leader can set
the base offset (``with_base_offset``) without reading the payload again.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

MAGIC = b"hb"
VERSION = 1
NO_PRODUCER = 0
NO_SEQUENCE = -1

HEADER = struct.Struct(">2sBBIQIIqqQq")
HEADER_SIZE = HEADER.size  # 56
BASE_OFFSET_AT = 8
CRC_FROM = 16
"""The crc covers the batch from this byte on."""
_BASE_OFFSET = struct.Struct(">Q")
PRODUCER_AT = 40
"""Where producer id and base sequence sit in the header."""
_PRODUCER = struct.Struct(">Qq")
_CRC_AT = 4
_CRC = struct.Struct(">I")
_U32_MAX = 2**32 - 1

Buffer = bytes | bytearray | memoryview


class MalformedBatch(ValueError):
    """Bytes that are not one well-formed batch; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class BatchHeader:
    crc: int
    base_offset: int
    record_count: int
    payload_length: int
    first_timestamp_ms: int
    max_timestamp_ms: int
    producer_id: int
    base_sequence: int

    @property
    def size(self) -> int:
        """Bytes of the whole batch, header included."""
        return HEADER_SIZE + self.payload_length

    @property
    def next_offset(self) -> int:
        """The offset after this batch's last record."""
        return self.base_offset + self.record_count


def parse_header(buf: Buffer) -> BatchHeader:
    """The header at the start of ``buf``; the payload need not follow."""
    if len(buf) < HEADER_SIZE:
        raise MalformedBatch(f"{len(buf)} bytes is shorter than the {HEADER_SIZE}-byte header")
    magic, version, attributes, *fields = HEADER.unpack_from(buf)
    if magic != MAGIC:
        raise MalformedBatch(f"bad magic {bytes(magic)!r} (expected {MAGIC!r})")
    if version != VERSION:
        raise MalformedBatch(f"unsupported batch version {version} (expected {VERSION})")
    if attributes != 0:
        raise MalformedBatch(f"reserved attributes byte is {attributes} (expected 0)")
    header = BatchHeader(*fields)
    if header.record_count < 1:
        raise MalformedBatch("record_count is 0: a batch holds at least one record")
    return header


def check_batch(buf: Buffer) -> BatchHeader:
    """The header of ``buf``, which must be exactly one whole batch with a good crc."""
    header = parse_header(buf)
    if len(buf) != header.size:
        raise MalformedBatch(
            f"header says {header.payload_length} payload bytes, "
            f"but {len(buf) - HEADER_SIZE} follow it"
        )
    check_crc(buf, header)
    return header


def check_crc(buf: Buffer, header: BatchHeader) -> None:
    actual = zlib.crc32(memoryview(buf)[CRC_FROM : header.size])
    if actual != header.crc:
        raise MalformedBatch(
            f"crc mismatch in batch at offset {header.base_offset}: "
            f"header says {header.crc:#010x}, bytes give {actual:#010x}"
        )


def make_batch(
    payload: Buffer,
    *,
    record_count: int,
    first_timestamp_ms: int,
    max_timestamp_ms: int | None = None,
    base_offset: int = 0,
    producer_id: int = NO_PRODUCER,
    base_sequence: int = NO_SEQUENCE,
) -> bytes:
    """A batch of ``record_count`` records encoded in ``payload`` (client side)."""
    if not 1 <= record_count <= _U32_MAX:
        raise ValueError(f"record_count {record_count} is not in 1..{_U32_MAX}")
    if len(payload) > _U32_MAX:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a batch")
    max_ts = first_timestamp_ms if max_timestamp_ms is None else max_timestamp_ms
    head = bytearray(HEADER_SIZE)
    HEADER.pack_into(
        head,
        0,
        MAGIC,
        VERSION,
        0,
        0,
        base_offset,
        record_count,
        len(payload),
        first_timestamp_ms,
        max_ts,
        producer_id,
        base_sequence,
    )
    # the crc runs on over the header's tail and then the payload, so the payload is
    # copied once, into the batch
    crc = zlib.crc32(payload, zlib.crc32(memoryview(head)[CRC_FROM:]))
    struct.pack_into(">I", head, 4, crc)
    return b"".join((head, payload))


def base_offset_prefix(batch: Buffer, base_offset: int) -> bytes:
    """The first ``CRC_FROM`` bytes of ``batch`` with ``base_offset`` set in them."""
    return bytes(batch[:BASE_OFFSET_AT]) + _BASE_OFFSET.pack(base_offset)


def with_base_offset(batch: Buffer, base_offset: int) -> bytes:
    """``batch`` with its base offset set; the crc stays valid (it does not cover it)."""
    return base_offset_prefix(batch, base_offset) + bytes(memoryview(batch)[CRC_FROM:])


def with_producer(batch: Buffer, producer_id: int, base_sequence: int) -> bytes:
    """``batch`` (a whole one) under another producer id and base sequence, its crc
    computed again (client side: a batch sent again under a fresh producer id)."""
    buf = bytearray(batch)
    _PRODUCER.pack_into(buf, PRODUCER_AT, producer_id, base_sequence)
    _CRC.pack_into(buf, _CRC_AT, zlib.crc32(memoryview(buf)[CRC_FROM:]))
    return bytes(buf)


@dataclass(frozen=True, slots=True)
class RawBatch:
    header: BatchHeader
    data: memoryview
    """The whole batch, header included."""

    @property
    def payload(self) -> memoryview:
        return self.data[HEADER_SIZE:]


def iter_batches(buf: Buffer, *, verify: bool = True) -> Iterator[RawBatch]:
    """Every batch in ``buf``, which must hold whole batches only (as ``read`` returns)."""
    view = memoryview(buf)
    position = 0
    while position < len(view):
        header = parse_header(view[position:])
        end = position + header.size
        if end > len(view):
            raise MalformedBatch(
                f"batch at byte {position} needs {header.size} bytes, {len(view) - position} left"
            )
        if verify:
            check_crc(view[position:end], header)
        yield RawBatch(header, view[position:end])
        position = end
