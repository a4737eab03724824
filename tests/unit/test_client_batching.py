"""The producer's pure parts: record encoding, batching, sequences, partition choice,
start offsets, retry decisions, and the CLI's line handling and printing."""

from __future__ import annotations

import asyncio

import pytest

from ha_sc.cli.consume import start_offset
from ha_sc.cli.record_output import json_line, key_value_line, render, value_line
from ha_sc.cli.stream_input import LineSplitter, MissingSeparator, split_key
from ha_sc.client.accumulator import PartitionBuffer
from ha_sc.client.consumer_record import ConsumerRecord, decode_batch_records
from ha_sc.client.idempotence import PartitionSequence
from ha_sc.client.offsets import Offset, resolve
from ha_sc.client.partitioner import RoundRobin, partition_for_key
from ha_sc.client.record_codec import encode_pairs, encode_values
from ha_sc.client.retry_policy import Next, after_error, backoff
from ha_sc.protocol.data import DataError, ErrorCode
from ha_sc.protocol.record_batch import MalformedBatch
from ha_sc.spu.storage.records import decode_records, encode_records


def test_encoded_records_are_the_storage_format() -> None:
    values = [b"", b"a", b"bb" * 300, b"same", b"same"]
    keys: list[bytes | None] = [None, b"k", b"", None, b"key"]
    assert encode_values(values) == encode_records(values)
    assert encode_values([b"x" * 100] * 5) == encode_records([b"x" * 100] * 5)
    pairs = list(zip(keys, values, strict=True))
    assert encode_pairs(keys, values) == encode_records(pairs)
    decoded = decode_batch_records(
        encode_pairs(keys, values), partition=0, base_offset=0, timestamp_ms=0
    )
    assert [(r.key, r.value) for r in decoded] == pairs
    assert [(r.key, r.value) for r in decode_records(encode_pairs(keys, values))] == pairs
    assert encode_values([]) == b""


def test_a_payload_decodes_into_numbered_consumer_records() -> None:
    payload = encode_pairs([b"key", None], [b"value", b"v2"])
    assert decode_batch_records(payload, partition=3, base_offset=40, timestamp_ms=9) == [
        ConsumerRecord(3, 40, b"key", b"value", 9),
        ConsumerRecord(3, 41, None, b"v2", 9),
    ]


def test_a_cut_payload_is_malformed() -> None:
    payload = encode_pairs([b"key", None], [b"value", b"v2"])
    for cut in (3, 9, len(payload) - 1):
        with pytest.raises(MalformedBatch):
            decode_batch_records(payload[:cut], partition=0, base_offset=0, timestamp_ms=0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> tuple[float, int]:
        return self.now, int(self.now * 1000)


async def test_a_batch_closes_at_its_record_or_byte_limit() -> None:
    loop = asyncio.get_running_loop()
    clock = FakeClock()
    buffer = PartitionBuffer(
        0, batch_bytes=1000, batch_records=3, new_future=loop.create_future, clock=clock
    )
    first, index, size = buffer.append(b"a", None)
    assert (index, size) == (0, 9)
    buffer.append(b"b", b"key")
    buffer.append(b"c", None)
    fourth, index, _ = buffer.append(b"d", None)
    assert fourth is not first and index == 0
    assert first.keys == [None, b"key", None] and first.payload is not None
    big, _, _ = buffer.append(b"x" * 995, None)
    assert big is not fourth  # 9 + 995 + 8 > 1000
    assert buffer.take(now=0.0, linger=1.0) is first
    assert buffer.take(now=0.0, linger=1.0) is fourth
    assert buffer.take(now=0.5, linger=1.0) is None  # the open one lingers
    assert buffer.due_at(1.0) == 1.0
    assert buffer.take(now=1.0, linger=1.0) is big
    assert not buffer.has_batches


async def test_many_records_are_cut_into_full_batches_in_order() -> None:
    loop = asyncio.get_running_loop()
    clock = FakeClock()
    buffer = PartitionBuffer(
        2, batch_bytes=108 * 10, batch_records=7, new_future=loop.create_future, clock=clock
    )
    values = [bytes([i]) * 100 for i in range(25)]
    parts = buffer.append_many(values, None)
    assert [(p.first, p.count) for p in parts] == [(0, 7), (0, 7), (0, 7), (0, 4)]
    batches = [p.batch for p in parts]
    assert [v for b in batches for v in b.values] == values
    more = buffer.append_many([b"z" * 100] * 5, None)  # tops up the open batch first
    assert [(p.batch, p.first, p.count) for p in more] == [
        (batches[3], 4, 3),
        (more[1].batch, 0, 2),
    ]
    buffer.flushing = True
    taken = [buffer.take(now=0.0, linger=9.0) for _ in range(5)]
    assert taken == [*batches, more[1].batch]
    assert batches[3].values[4:] == [b"z" * 100] * 3
    sized = PartitionBuffer(
        0, batch_bytes=250, batch_records=100, new_future=loop.create_future, clock=clock
    )
    sized.append(b"a", None)
    keyed = sized.append_many([b"x" * 100] * 5 + [b"y" * 400], b"k")
    # 9 bytes are there; 109 bytes per record with its key
    assert [(p.first, p.count) for p in keyed] == [(1, 2), (0, 2), (0, 1), (0, 1)]
    assert keyed[0].batch.keys == [None, b"k", b"k"]
    assert all(p.batch.keys == [b"k"] * p.count for p in keyed[1:])


def test_sequences_count_records_and_restart_under_a_new_producer_id() -> None:
    sequence = PartitionSequence(77)
    assert sequence.take(10) == (77, 0)
    assert sequence.take(5) == (77, 10)
    sequence.restart()
    producer_id, base = sequence.take(3)
    assert producer_id not in (0, 77) and base == 0
    assert 0 < producer_id < 2**63


def test_a_key_always_lands_on_one_partition_and_no_key_goes_round() -> None:
    assert len({partition_for_key(b"user-7", 3) for _ in range(5)}) == 1
    assert {partition_for_key(f"k{i}".encode(), 3) for i in range(100)} == {0, 1, 2}
    turns = RoundRobin()
    assert [turns.next(3) for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_start_offsets_resolve_within_the_partition() -> None:
    assert resolve(Offset.beginning(), log_start=5, end=20) == 5
    assert resolve(Offset.beginning(3), log_start=5, end=20) == 8
    assert resolve(Offset.beginning(99), log_start=5, end=20) == 20
    assert resolve(Offset.end(), log_start=5, end=20) == 20
    assert resolve(Offset.end(4), log_start=5, end=20) == 16
    assert resolve(Offset.end(99), log_start=5, end=20) == 5
    assert resolve(Offset.absolute(7), log_start=5, end=20) == 7
    with pytest.raises(ValueError, match="negative"):
        Offset.absolute(-1)


def test_errors_decide_reroute_retry_or_fail() -> None:
    named = DataError(code=ErrorCode.NOT_LEADER, message="", leader=2, leader_address="h:1")
    unnamed = DataError(code=ErrorCode.NOT_LEADER, message="")
    assert after_error(named).next is Next.REROUTE and not after_error(named).pause
    assert after_error(unnamed).refresh and after_error(unnamed).pause
    assert after_error(DataError(code=ErrorCode.TIMEOUT, message="")).next is Next.RETRY
    assert after_error(DataError(code=ErrorCode.MALFORMED, message="")).next is Next.FAIL
    resend = after_error(DataError(code=ErrorCode.OUT_OF_SEQUENCE, message=""))
    assert resend.next is Next.NEW_PRODUCER and not resend.pause and not resend.refresh
    ceilings = [backoff(n, initial=0.02, maximum=0.25, draw=lambda: 1.0) for n in (1, 2, 3, 5)]
    assert ceilings == [0.02, 0.04, 0.08, 0.25]
    assert backoff(3, initial=0.02, maximum=0.25, draw=lambda: 0.5) == 0.04  # full jitter
    assert backoff(3, initial=0.02, maximum=0.25, draw=lambda: 0.0) == 0.0


def test_lines_are_split_across_reads_and_keys_cut_at_the_separator() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"one\ntw") == [b"one"]
    assert splitter.feed(b"o\r\n\nthree") == [b"two", b""]
    assert splitter.finish() == [b"three"]
    assert split_key(b"user=a=b", b"=") == (b"user", b"a=b")
    with pytest.raises(MissingSeparator):
        split_key(b"no separator", b"=")


def test_start_flags_follow_fluvio() -> None:
    assert start_offset(beginning=False, offset=None, head=None, tail=None) == Offset.end()
    assert start_offset(beginning=True, offset=None, head=None, tail=None) == Offset.beginning()
    assert start_offset(beginning=False, offset=-3, head=None, tail=None) == Offset.end(3)
    assert start_offset(beginning=False, offset=4, head=None, tail=None) == Offset.absolute(4)
    assert start_offset(beginning=False, offset=None, head=2, tail=None) == Offset.beginning(2)
    assert start_offset(beginning=False, offset=None, head=None, tail=5) == Offset.end(5)
    with pytest.raises(Exception, match="exclude"):
        start_offset(beginning=True, offset=1, head=None, tail=None)


def test_records_print_as_values_key_values_or_json() -> None:
    record = ConsumerRecord(1, 42, b"k", "värde".encode(), 1700)
    keyless = ConsumerRecord(0, 0, None, b"v", 1)
    assert value_line(record) == "värde"
    assert key_value_line(record) == "[k] värde"
    assert key_value_line(keyless) == "[null] v"
    assert json_line(record) == (
        '{"partition": 1, "offset": 42, "key": "k", "value": "värde", "timestamp": 1700}'
    )
    assert render([record, keyless], value_line) == "värde\nv\n".encode()
