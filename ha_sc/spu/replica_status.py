"""The seam between the replicas the SC assigned and the logs that hold their data.

The control plane asks an ``OffsetSource`` for each local replica's offsets
when it builds a status report. ``NoLogs`` (an SPU without a data plane) reports
every replica empty (LEO 0, HW 0).

A session's first report is full; the next ones carry what changed. An SPU holds
tens of thousands of replicas, and comparing every one each 0.3 s cost it most of a
core, so a report looks only at the replicas the table changed and those whose
offsets the source says may have moved; every ``SWEEP_EVERY`` reports it compares
them all, in case a move went unsaid.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import TypeAdapter

from ha_sc.protocol import ReplicaReport, StatusReport, encode_message
from ha_sc.protocol.framing import frame
from ha_sc.spu.replica_table import LocalReplica, ReplicaRole, ReplicaTable


@dataclass(frozen=True, slots=True)
class ReplicaOffsets:
    leo: int = 0
    """Log end offset."""
    hw: int = 0
    """High watermark."""
    lsr: int | None = None
    """Followers in sync, known to a leader only."""


SWEEP_EVERY = 100
"""Every this many reports (30 s at 0.3 s), every replica is compared: a safety net for a
move the data plane did not flag (every LEO, HW, role and ISR change is flagged). Each
sweep of 66k replicas (100k partitions) cost an SPU about 0.25 s of CPU; every 9 s
that was a sixth of its CPU while a store filled."""

SLICE = 2000
"""Replicas looked at between two turns of the event loop (``next_report_sliced``)."""


class OffsetSource(Protocol):
    def offsets(self, replica: LocalReplica) -> ReplicaOffsets: ...

    def moved(self) -> set[str] | None:
        """Partitions whose offsets may have changed since the last call (forgotten as
        they are returned); None when the source cannot tell, so every one is compared."""
        ...


class NoLogs:
    """Offsets before the data plane: every replica is empty."""

    def offsets(self, replica: LocalReplica) -> ReplicaOffsets:
        if replica.role is ReplicaRole.LEADER:
            return ReplicaOffsets(lsr=0)
        return ReplicaOffsets()

    def moved(self) -> set[str]:
        return set()  # the offsets follow the role alone, which the table tracks


def status_report(table: ReplicaTable, source: OffsetSource) -> StatusReport:
    """The status report of every replica in ``table``."""
    return StatusReporter().next_report(table, source)


class StatusReporter:
    """Builds one session's reports: full first, then only what changed."""

    def __init__(self, *, sweep_every: int = SWEEP_EVERY) -> None:
        self._sent: dict[str, ReplicaOffsets] | None = None
        self._sweep_every = sweep_every
        self._reports = 0

    def next_report(self, table: ReplicaTable, source: OffsetSource) -> StatusReport:
        """The next report, built at once."""
        steps = self._build(table, source)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def next_report_sliced(self, table: ReplicaTable, source: OffsetSource) -> StatusReport:
        """The next report, ``SLICE`` replicas at a time with the event loop served in
        between: a full report or a sweep of 66k replicas held the loop for 0.2-2 s."""
        steps = self._build(table, source)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            await asyncio.sleep(0)

    def _build(
        self, table: ReplicaTable, source: OffsetSource
    ) -> Generator[None, None, StatusReport]:
        """Builds the next report, pausing (a bare ``yield``) after each ``SLICE`` replicas
        it looked at; what the table changes meanwhile goes in a later report."""
        touched = table.take_touched()
        moved = source.moved()
        sent = self._sent
        self._reports += 1
        if sent is None:
            offsets: dict[str, ReplicaOffsets] = {}
            for n, key in enumerate(sorted(table.partitions()), 1):
                held = table.get(key)
                if held is not None:  # not removed while the loop ran
                    offsets[key] = source.offsets(held)
                if n % SLICE == 0:
                    yield
            self._sent = offsets
            return (yield from _report(table.spu_id, offsets, full=True))
        if moved is None or self._reports % self._sweep_every == 0:
            keys: set[str] = set(sent).union(table.partitions())
        else:
            keys = touched | moved
        changed: dict[str, ReplicaOffsets] = {}
        removed: list[str] = []
        for n, key in enumerate(sorted(keys), 1):
            if n % SLICE == 0:
                yield
            replica = table.get(key)
            if replica is None:
                if sent.pop(key, None) is not None:
                    removed.append(key)
                continue
            offsets_now = source.offsets(replica)
            if sent.get(key) != offsets_now:
                sent[key] = changed[key] = offsets_now
        return (yield from _report(table.spu_id, changed, full=False, removed=removed))


_REPLICA_REPORTS: TypeAdapter[list[ReplicaReport]] = TypeAdapter(list[ReplicaReport])


async def report_frame(report: StatusReport) -> bytes:
    """The frame carrying ``report``; a large one is encoded ``SLICE`` replicas per call,
    the event loop served in between (one call over 66k replicas held it 0.25 s, right
    after every resync)."""
    replicas = report.replicas
    if len(replicas) <= SLICE:
        return encode_message(report)
    head = report.model_dump_json(exclude={"replicas"}).encode()
    chunks = []
    for start in range(0, len(replicas), SLICE):
        chunks.append(_REPLICA_REPORTS.dump_json(replicas[start : start + SLICE])[1:-1])
        await asyncio.sleep(0)
    payload = b"".join((head[:-1], b',"replicas":[', b",".join(chunks), b"]}"))
    return frame(report.type, payload)


def _report(
    spu_id: int, offsets: dict[str, ReplicaOffsets], *, full: bool, removed: Sequence[str] = ()
) -> Generator[None, None, StatusReport]:
    """The report of ``offsets``, pausing after each ``SLICE``. The replica reports are
    made with ``model_construct``: their keys come from the table (validated specs) and
    their offsets from the logs, so validating 66k of them again would only cost time."""
    replicas: list[ReplicaReport] = []
    for n, (partition, o) in enumerate(offsets.items(), 1):
        replicas.append(
            ReplicaReport.model_construct(partition=partition, leo=o.leo, hw=o.hw, lsr=o.lsr)
        )
        if n % SLICE == 0:
            yield
    return StatusReport.model_construct(
        spu_id=spu_id, replicas=replicas, full=full, removed=list(removed), trace={}
    )
