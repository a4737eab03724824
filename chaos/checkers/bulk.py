"""Checkers of the bulk load, by the range: every acknowledged record at the offset its
acknowledgement gave, and no record read at two offsets.

An acknowledged ``bulk`` part says: seqs ``first_seq`` onward at offsets ``offset``
onward of one partition. The final read's ``span`` events say which seqs each offset
holds. A record is lost when its offset is missing from the final read or holds
another seq (the acknowledgement named an offset the log did not keep).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

from chaos.history.events import Bulk, Span
from chaos.history.history import FINAL_READER, History

EXAMPLES = 10


@dataclass(frozen=True)
class BulkCheck:
    checked: bool
    """False without a bulk load, or without a final read of it."""
    acked: int = 0
    unknown: int = 0
    """Records of calls whose outcome is unknown."""
    lost: int = 0
    lost_examples: list[tuple[int, int, int]] = field(default_factory=list)
    """(partition, offset, seq acknowledged there)."""
    duplicates: int = 0
    records_per_s: float | None = None
    """Acknowledged records over the time from the first call to the last ack."""


def check_bulk(history: History) -> BulkCheck:
    calls = history.bulks
    if not calls:
        return BulkCheck(checked=False)
    acked = [b for b in calls if b.outcome == "ok" and b.offset is not None]
    unknown = sum(b.count for b in calls if b.outcome != "ok")
    total = sum(b.count for b in acked)
    rate = _rate(acked, total)
    final = [s for s in history.spans if s.reader == FINAL_READER]
    if not final:
        return BulkCheck(checked=False, acked=total, unknown=unknown, records_per_s=rate)
    by_partition = _index(final)
    lost = 0
    examples: list[tuple[int, int, int]] = []
    for call in acked:
        for first, upto in _missing(call, by_partition.get((call.topic, call.partition), ([], []))):
            lost += upto - first
            examples += _positions(call, first, min(upto, first + EXAMPLES - len(examples)))
    return BulkCheck(
        checked=True,
        acked=total,
        unknown=unknown,
        lost=lost,
        lost_examples=examples,
        duplicates=duplicate_seqs(final),
        records_per_s=rate,
    )


def _rate(acked: list[Bulk], total: int) -> float | None:
    if not acked:
        return None
    seconds = max(b.end for b in acked) - min(b.start for b in acked)
    return total / seconds if seconds > 0 else None


def _index(spans: list[Span]) -> dict[tuple[str, int], tuple[list[int], list[Span]]]:
    """Per (topic, partition): the spans sorted by offset, and their first offsets."""
    grouped: dict[tuple[str, int], list[Span]] = defaultdict(list)
    for span in spans:
        grouped[(span.topic, span.partition)].append(span)
    index = {}
    for key, group in grouped.items():
        group.sort(key=lambda s: s.offset)
        index[key] = ([s.offset for s in group], group)
    return index


def _missing(call: Bulk, partition: tuple[list[int], list[Span]]) -> list[tuple[int, int]]:
    """The ranges of offsets [first, upto) of ``call``'s records that the final read
    does not have there."""
    assert call.offset is not None
    starts, spans = partition
    missing: list[tuple[int, int]] = []
    offset, end = call.offset, call.offset + call.count
    while offset < end:
        i = bisect.bisect_right(starts, offset) - 1
        span = spans[i] if i >= 0 else None
        if span is not None and offset < span.offset + span.count:
            upto = min(end, span.offset + span.count)
            held = span.seq + (offset - span.offset)
            if span.producer != call.producer or held != call.first_seq + (offset - call.offset):
                missing.append((offset, upto))
            offset = upto
            continue
        upto = min(end, starts[i + 1]) if i + 1 < len(starts) else end
        missing.append((offset, upto))
        offset = upto
    return missing


def _positions(call: Bulk, first: int, upto: int) -> list[tuple[int, int, int]]:
    assert call.offset is not None
    return [(call.partition, o, call.first_seq + (o - call.offset)) for o in range(first, upto)]


def duplicate_seqs(spans: list[Span]) -> int:
    """Records (producer, seq) read at more than one offset."""
    by_producer: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for span in spans:
        by_producer[span.producer].append((span.seq, span.seq + span.count))
    duplicates = 0
    for ranges in by_producer.values():
        ranges.sort()
        reach = -1
        for start, stop in ranges:
            duplicates += max(0, min(stop, reach) - start)
            reach = max(reach, stop)
    return duplicates
