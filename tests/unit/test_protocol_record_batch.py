"""The batch format and the record encoding, sans-IO."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ha_sc.protocol.record_batch import with_producer
from ha_sc.spu.storage import (
    HEADER_SIZE,
    MalformedBatch,
    Record,
    check_batch,
    decode_records,
    encode_records,
    iter_batches,
    make_batch,
    parse_header,
    with_base_offset,
)


def batch(values: list[bytes], *, ts: int = 1_000, base_offset: int = 0) -> bytes:
    return make_batch(
        encode_records(values),
        record_count=len(values),
        first_timestamp_ms=ts,
        base_offset=base_offset,
    )


def test_header_round_trip() -> None:
    payload = encode_records([b"a", (b"k", b"v")])
    raw = make_batch(
        payload,
        record_count=2,
        first_timestamp_ms=10,
        max_timestamp_ms=20,
        base_offset=7,
        producer_id=99,
        base_sequence=3,
    )
    header = check_batch(raw)
    assert len(raw) == HEADER_SIZE + len(payload) == header.size
    assert (header.base_offset, header.record_count, header.next_offset) == (7, 2, 9)
    assert (header.first_timestamp_ms, header.max_timestamp_ms) == (10, 20)
    assert (header.producer_id, header.base_sequence) == (99, 3)
    assert decode_records(raw[HEADER_SIZE:]) == [Record(None, b"a"), Record(b"k", b"v")]


def test_with_base_offset_rewrites_the_header_and_keeps_the_crc_valid() -> None:
    raw = batch([b"x", b"y"])
    moved = with_base_offset(raw, 1234)
    assert check_batch(moved).base_offset == 1234
    assert moved[16:] == raw[16:]


def test_with_producer_moves_a_batch_to_another_producer_with_a_valid_crc() -> None:
    raw = make_batch(
        encode_records([b"x", b"y"]),
        record_count=2,
        first_timestamp_ms=7,
        producer_id=11,
        base_sequence=40,
    )
    moved = with_producer(raw, 2**63 - 1, 0)
    header = check_batch(moved)
    assert (header.producer_id, header.base_sequence) == (2**63 - 1, 0)
    assert (header.record_count, header.first_timestamp_ms) == (2, 7)
    assert moved[HEADER_SIZE:] == raw[HEADER_SIZE:]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[:10], "shorter than the 56-byte header"),
        (lambda b: b"xx" + b[2:], "bad magic"),
        (lambda b: b[:2] + b"\x09" + b[3:], "unsupported batch version 9"),
        (lambda b: b[:3] + b"\x01" + b[4:], "reserved attributes"),
        (lambda b: b[:-1], "payload bytes, but"),
        (lambda b: b + b"!", "payload bytes, but"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "crc mismatch"),
        (lambda b: b[:16] + struct.pack(">I", 0) + b[20:], "record_count is 0"),
    ],
)
def test_malformed_batches_name_what_is_wrong(
    damage: Callable[[bytes], bytes], message: str
) -> None:
    with pytest.raises(MalformedBatch, match=message):
        check_batch(damage(batch([b"hello"])))


def test_parse_header_needs_no_payload() -> None:
    raw = batch([b"payload"])
    assert parse_header(raw[:HEADER_SIZE]).payload_length == len(raw) - HEADER_SIZE


def test_iter_batches_walks_whole_batches_and_refuses_a_partial_one() -> None:
    raws = [batch([b"a"], base_offset=0), batch([b"b", b"c"], base_offset=1)]
    found = [(b.header.base_offset, bytes(b.data)) for b in iter_batches(b"".join(raws))]
    assert found == [(0, raws[0]), (1, raws[1])]
    with pytest.raises(MalformedBatch, match="needs"):
        list(iter_batches(b"".join(raws)[:-1]))


def test_decode_records_refuses_a_truncated_payload() -> None:
    payload = encode_records([(b"key", b"value")])
    with pytest.raises(MalformedBatch, match="record 0"):
        decode_records(payload[:-1])
    with pytest.raises(MalformedBatch, match="length field"):
        decode_records(payload[:2])


def test_make_batch_refuses_an_empty_batch() -> None:
    with pytest.raises(ValueError, match="record_count 0"):
        make_batch(b"", record_count=0, first_timestamp_ms=0)


records = st.lists(
    st.one_of(st.binary(max_size=64), st.tuples(st.none() | st.binary(max_size=16), st.binary())),
    min_size=1,
    max_size=20,
)


@given(records, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_any_records_survive_the_trip_and_any_base_offset(
    values: list[bytes | tuple[bytes | None, bytes]], first: int, second: int
) -> None:
    raw = make_batch(encode_records(values), record_count=len(values), first_timestamp_ms=0)
    moved = with_base_offset(with_base_offset(raw, first), second)
    (only,) = iter_batches(moved)
    assert only.header.base_offset == second
    expected = [Record(None, v) if isinstance(v, bytes) else Record(*v) for v in values]
    assert decode_records(only.payload) == expected
