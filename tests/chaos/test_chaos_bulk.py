"""The bulk load's checker, by the range, on hand-made histories: records read where
they were acknowledged pass; a missing range, an offset holding another record and
a record read twice are each counted; reads are folded into runs."""

from __future__ import annotations

from chaos.checkers.bulk import check_bulk
from chaos.checkers.verdict import check
from chaos.history.events import Bulk, Event, Span
from chaos.history.history import FINAL_READER, History
from chaos.workload.bulk import spans_of
from ha_sc.client import ConsumerRecord

T0 = 1_700_000_000.0


def call(partition: int, first_seq: int, count: int, offset: int | None, *,
         outcome: str = "ok", at: float = 0.0) -> Bulk:  # fmt: skip
    return Bulk(
        producer="load", topic="chaos-load", partition=partition, first_seq=first_seq,
        count=count, acks="all", start=T0 + at, end=T0 + at + 0.1, outcome=outcome,
        offset=offset,
    )  # fmt: skip


def span(partition: int, offset: int, seq: int, count: int) -> Span:
    return Span(
        reader=FINAL_READER, t=T0 + 30, topic="chaos-load", partition=partition,
        offset=offset, producer="load", seq=seq, count=count,
    )  # fmt: skip


def history(*events: Event) -> History:
    return History(events)


def test_records_read_where_they_were_acknowledged_pass() -> None:
    result = check_bulk(history(
        call(0, 0, 1000, 0, at=0.0), call(1, 1000, 1000, 0, at=0.5),
        call(0, 2000, 1000, 1000, at=1.0), call(1, 3000, 500, None, outcome="unknown", at=1.5),
        span(0, 0, 0, 600), span(0, 600, 600, 400), span(0, 1000, 2000, 1000),
        span(1, 0, 1000, 1000),
    ))  # fmt: skip
    assert result.checked
    assert (result.acked, result.unknown, result.lost, result.duplicates) == (3000, 500, 0, 0)
    assert result.records_per_s is not None and round(result.records_per_s) == 2727


def test_a_missing_range_and_an_offset_holding_another_record_are_lost() -> None:
    result = check_bulk(history(
        call(0, 0, 1000, 0), call(0, 1000, 1000, 1000), call(2, 5000, 10, 40),
        # offsets 300-399 missing; offsets 1000-1999 hold other seqs; partition 2 unread
        span(0, 0, 0, 300), span(0, 400, 400, 600), span(0, 1000, 7000, 1000),
    ))  # fmt: skip
    assert result.lost == 100 + 1000 + 10
    assert result.lost_examples[:2] == [(0, 300, 300), (0, 301, 301)]
    assert len(result.lost_examples) == 10


def test_a_record_read_at_two_offsets_is_a_duplicate() -> None:
    result = check_bulk(history(call(0, 0, 10, 0), span(0, 0, 0, 10), span(0, 10, 5, 3)))
    assert (result.lost, result.duplicates) == (0, 3)


def test_without_a_final_read_nothing_is_judged_and_without_a_load_nothing_is_added() -> None:
    unread = check_bulk(history(call(0, 0, 10, 0)))
    assert not unread.checked and unread.acked == 10
    names = {i.name for i in check(history(call(0, 0, 10, 0))).invariants}
    assert {"lost_acks_all_load", "duplicates_load"} <= names
    assert "lost_acks_all_load" not in {i.name for i in check(history()).invariants}


def test_reads_fold_into_runs_of_consecutive_offsets_and_seqs() -> None:
    def record(partition: int, offset: int, value: str) -> ConsumerRecord:
        return ConsumerRecord(partition, offset, None, value.encode(), 0)

    batch = [
        record(0, 10, "load:5"), record(0, 11, "load:6"), record(0, 12, "load:7"),
        record(0, 13, "load:9"),  # a seq skipped: a new run
        record(1, 14, "load:10"),  # another partition: a new run
        record(1, 15, "other"),  # not a bulk-load record: left out
    ]  # fmt: skip
    runs = [(s.partition, s.offset, s.seq, s.count) for s in spans_of(batch, T0)]
    assert runs == [(0, 10, 5, 3), (0, 13, 9, 1), (1, 14, 10, 1)]
