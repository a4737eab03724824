"""Idempotent produce: duplicates, sequences, gaps, truncation, rebuilding from headers."""

from __future__ import annotations

from ha_sc.spu.dataplane.producer_state import (
    Append,
    Duplicate,
    OutOfSequence,
    ProducerTable,
)
from ha_sc.spu.storage import NO_PRODUCER, NO_SEQUENCE, BatchHeader

PID = 42


def header(base_sequence: int, count: int, offset: int = 0, pid: int = PID) -> BatchHeader:
    return BatchHeader(
        crc=0,
        base_offset=offset,
        record_count=count,
        payload_length=0,
        first_timestamp_ms=0,
        max_timestamp_ms=0,
        producer_id=pid,
        base_sequence=base_sequence,
    )


def test_a_retried_batch_is_a_duplicate_with_its_first_offset() -> None:
    table = ProducerTable()
    table.record(header(0, 5, offset=100))
    table.record(header(5, 5, offset=105))
    assert table.verdict(header(0, 5)) == Duplicate(100, 105)
    assert table.verdict(header(5, 5)) == Duplicate(105, 110)
    assert table.verdict(header(10, 3)) == Append()


def test_a_batch_older_than_the_window_is_a_duplicate_without_an_offset() -> None:
    table = ProducerTable(window=2)
    for n in range(4):
        table.record(header(n * 10, 10, offset=n * 10))
    assert table.verdict(header(0, 10)) == Duplicate(None, None)
    assert table.verdict(header(30, 10)) == Duplicate(30, 40)


def test_a_gap_is_refused_and_an_unknown_producer_starts_anywhere() -> None:
    table = ProducerTable()
    assert table.verdict(header(500, 1)) == Append()
    table.record(header(0, 10))
    assert table.verdict(header(11, 1)) == OutOfSequence(expected=10)


def test_batches_without_a_producer_or_sequence_are_always_appended() -> None:
    table = ProducerTable()
    table.record(header(NO_SEQUENCE, 3, pid=7))
    table.record(header(0, 3, pid=NO_PRODUCER))
    assert len(table) == 0
    assert table.verdict(header(0, 3, pid=NO_PRODUCER)) == Append()


def test_a_request_plan_sees_its_own_earlier_batches() -> None:
    table = ProducerTable()
    table.record(header(0, 10, offset=0))
    plan = table.plan([header(0, 10), header(10, 5), header(15, 5), header(15, 5)])
    assert plan.verdicts == (Duplicate(0, 10), Append(), Append(), Duplicate(None, None))
    assert plan.refusal is None
    assert table.last_sequence(PID) == 9  # planning writes nothing
    gap = table.plan([header(10, 5), header(20, 1)])
    assert gap.refusal == OutOfSequence(expected=15)


def test_truncation_forgets_what_was_cut() -> None:
    table = ProducerTable()
    table.record(header(0, 10, offset=0))
    table.record(header(10, 10, offset=10))
    table.record(header(0, 1, offset=20, pid=9))
    table.truncate(10)
    assert table.last_sequence(PID) == 9
    assert table.last_sequence(9) is None
    assert table.verdict(header(10, 10)) == Append()


def test_the_table_rebuilds_from_a_logs_headers_and_forgets_the_oldest_producer() -> None:
    headers = [header(0, 1, offset=n, pid=n + 1) for n in range(3)]
    table = ProducerTable.from_headers(headers, max_producers=2)
    assert len(table) == 2
    assert table.last_sequence(1) is None
    assert table.verdict(header(0, 1, pid=3)) == Duplicate(2, 3)
