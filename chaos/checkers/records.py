"""Checkers of the records: acknowledged writes lost, duplicates, offsets that disagree.

Pure functions over a ``History``. The drain phase's full read (reader ``final``) is
what the log holds at the end; a record counts as lost when it was acknowledged but
the final read does not have it. Losses of acks=all records must be zero; losses of
acks=leader records are counted apart (a partition-leader change may lose them, as
in Kafka with acks=1).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from chaos.history.events import Produce, Read
from chaos.history.history import History

RecordId = tuple[str, int]
"""(producer, seq): unique per record written."""
Position = tuple[str, int, int]
"""(topic, partition, offset)."""


@dataclass(frozen=True, slots=True)
class Losses:
    checked: bool
    """False when there was no final read to check against."""
    acked: int = 0
    lost: list[RecordId] = field(default_factory=list)


def lost_records(history: History, acks: str) -> Losses:
    """Records produced with ``acks`` and acknowledged that the final read lacks."""
    final = history.final_reads
    acked = [p for p in history.produces if p.outcome == "ok" and p.acks == acks]
    if not final:
        return Losses(checked=False, acked=len(acked))
    present = {(r.producer, r.seq) for r in final}
    lost = sorted({(p.producer, p.seq) for p in acked} - present)
    return Losses(checked=True, acked=len(acked), lost=lost)


def duplicates(history: History) -> dict[RecordId, list[Position]]:
    """Records found at more than one position (by any reader)."""
    positions: dict[RecordId, set[Position]] = defaultdict(set)
    for r in history.reads:
        positions[(r.producer, r.seq)].add(_position(r))
    return {rid: sorted(p) for rid, p in sorted(positions.items()) if len(p) > 1}


@dataclass(frozen=True, slots=True)
class OffsetConflict:
    position: Position
    records: list[RecordId]
    """Every record seen at this position, by reads or acknowledgements."""
    sources: list[str]
    """Who said so: readers, or ``ack`` for a produce acknowledgement."""


def inconsistent_offsets(history: History) -> list[OffsetConflict]:
    """Positions where two reads, or a read and an acknowledgement, name different
    records: divergent logs, or an acknowledgement the log did not keep.

    An acks=leader record that was lost (counted by ``lost_records``) may see its
    offset given to another record, as in Kafka with acks=1: its acknowledgement is
    left out here; that of a kept acks=leader record is not."""
    seen: dict[Position, dict[RecordId, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in history.reads:
        seen[_position(r)][(r.producer, r.seq)].add(r.reader)
    kept = {(r.producer, r.seq) for r in history.reads}
    for p in history.produces:
        if p.acks == "leader" and (p.producer, p.seq) not in kept:
            continue
        if p.outcome == "ok" and p.offset is not None:
            position = (p.topic, p.partition, p.offset)
            if position in seen:  # unread positions (a trimmed log) prove nothing
                seen[position][(p.producer, p.seq)].add("ack")
    return [
        OffsetConflict(position, sorted(by), sorted({s for ss in by.values() for s in ss}))
        for position, by in sorted(seen.items())
        if len(by) > 1
    ]


def indeterminate_landed(history: History) -> int:
    """Produces that got no answer (unknown) but are in the final read: not an error,
    a figure (the client could not know)."""
    present = {(r.producer, r.seq) for r in history.final_reads}
    return sum(
        1 for p in history.produces if p.outcome == "unknown" and (p.producer, p.seq) in present
    )


def failed_but_present(history: History) -> list[RecordId]:
    """Produces refused for sure (outcome fail) that the final read has anyway."""
    present = {(r.producer, r.seq) for r in history.final_reads}
    return sorted(
        {(p.producer, p.seq) for p in history.produces if p.outcome == "fail"}
        & present - {(p.producer, p.seq) for p in history.produces if p.outcome != "fail"}
    )


def _position(r: Read | Produce) -> Position:
    assert r.offset is not None
    return (r.topic, r.partition, r.offset)
