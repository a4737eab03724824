"""The figures of a run: how long failover took and what the clients felt.

Pure functions over a ``History``; each returns None where the history has nothing
to measure (no fault, no produce acknowledged in a window).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from chaos.history.events import Produce
from chaos.history.history import History, Window

BUCKET = 1.0
"""Seconds per throughput bucket."""


@dataclass(frozen=True, slots=True)
class Failover:
    fault: str
    target: str
    injected: float
    epoch_before: int | None
    new_epoch: int | None
    new_leader: str | None
    leader_after: float | None
    """Seconds from injection until a replica claimed an epoch above every earlier one."""
    spus_after: float | None
    """Seconds from injection until every SPU accepted a message of the new epoch."""


def failovers(history: History) -> list[Failover]:
    """For each fault: time to a new leader, and until every SPU follows it (a new
    leader counts for a fault only if it came before the next fault was injected)."""
    windows = history.faults()
    starts = sorted({w.start for w in windows})
    return [
        _failover(history, w, min((s for s in starts if s > w.start), default=math.inf))
        for w in windows
    ]


def _failover(history: History, window: Window, until: float) -> Failover:
    claims = [e for e in history.leaders if e.role == "leader" and e.epoch is not None]
    top = max((e.epoch for e in claims if e.t < window.start and e.epoch), default=None)
    after = sorted(
        (e.t, e.epoch, e.replica)
        for e in claims
        if e.epoch is not None and window.start <= e.t < until and (top is None or e.epoch > top)
    )
    if not after:
        return Failover(window.name, window.target, window.start, top, None, None, None, None)
    t, epoch, replica = after[0]
    firsts = [
        _first_accept(history, spu, epoch, window.start)
        for spu in sorted({c.spu for c in history.controls})
    ]
    spus_after = None
    if firsts and None not in firsts:
        spus_after = max(f for f in firsts if f is not None) - window.start
    return Failover(
        window.name, window.target, window.start, top, epoch, replica, t - window.start, spus_after
    )


def _first_accept(history: History, spu: int, epoch: int, since: float) -> float | None:
    """When ``spu`` first accepted a message of ``epoch`` or later, after ``since``."""
    return min(
        (
            c.t
            for c in history.controls
            if c.spu == spu and c.outcome == "accept" and c.epoch >= epoch and c.t >= since
        ),
        default=None,
    )


def acked(history: History) -> list[Produce]:
    return sorted((p for p in history.produces if p.outcome == "ok"), key=lambda p: p.end)


@dataclass(frozen=True, slots=True)
class Gap:
    seconds: float
    after: float
    """When the last acknowledgement before the gap came."""


def largest_ack_gap(history: History) -> Gap | None:
    """The longest time between two consecutive produce acknowledgements."""
    ends = [p.end for p in acked(history)]
    if len(ends) < 2:
        return None
    seconds, after = max((b - a, a) for a, b in itertools.pairwise(ends))
    return Gap(seconds, after)


def largest_ack_gap_by_partition(history: History) -> dict[str, float]:
    """Per partition and acks (``topic-N acks=all``), the longest time between two
    acknowledgements (acks=leader records may flow while acks=all ones wait)."""
    ends: dict[str, list[float]] = {}
    for p in acked(history):
        ends.setdefault(f"{p.topic}-{p.partition} acks={p.acks}", []).append(p.end)
    return {
        key: max(b - a for a, b in itertools.pairwise(times))
        for key, times in sorted(ends.items())
        if len(times) > 1
    }


def throughput(history: History, window: Window | None = None) -> list[tuple[float, int]]:
    """Acknowledged produces per 1-s bucket, (bucket start, count), over ``window``
    (default: first to last acknowledgement); empty buckets count as 0."""
    ends = [p.end for p in acked(history)]
    if not ends:
        return []
    start = window.start if window else ends[0]
    stop = window.end if window else ends[-1]
    counts = Counter(int((t - start) // BUCKET) for t in ends if start <= t < stop)
    buckets = max(1, int((stop - start) // BUCKET))  # whole buckets only
    return [(start + i * BUCKET, counts.get(i, 0)) for i in range(buckets)]


@dataclass(frozen=True, slots=True)
class ThroughputDip:
    steady_median: float
    lowest: int
    lowest_at: float
    ratio: float
    """The lowest bucket during the fault and recovery, divided by the steady median."""


def throughput_dip(history: History) -> ThroughputDip | None:
    phases = history.phases()
    baseline = phases.get("baseline")
    disturbed = _disturbed(phases)
    if baseline is None or disturbed is None:
        return None
    steady = [count for _, count in throughput(history, baseline)]
    during = throughput(history, disturbed)
    if not steady or not during:
        return None
    median = statistics.median(steady)
    lowest_at, lowest = min(during, key=lambda b: b[1])
    return ThroughputDip(median, lowest, lowest_at, lowest / median if median else 0.0)


def percentile(values: Sequence[float], q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@dataclass(frozen=True, slots=True)
class LatencyRatio:
    baseline_p99: float | None
    fault_p99: float | None
    ratio: float | None


def latency_ratio(history: History) -> LatencyRatio:
    """p99 latency of acknowledged produces started during the faults (the fault phase
    when no fault was recorded: one injected by hand), over baseline's."""
    phases = history.phases()
    baseline = phases.get("baseline")
    windows = history.faults() or [w for n, w in phases.items() if n == "fault"]
    done = acked(history)
    base = percentile([p.end - p.start for p in done if baseline and p.start in baseline], 99)
    fault = percentile([p.end - p.start for p in done if any(p.start in w for w in windows)], 99)
    ratio = fault / base if fault is not None and base else None
    return LatencyRatio(base, fault, ratio)


def client_errors(history: History) -> dict[str, int]:
    """Errors the clients saw, by kind (the error's first word)."""
    kinds = Counter(
        (p.error or p.outcome).split(":", 1)[0].split(" ", 1)[0]
        for p in history.produces
        if p.outcome != "ok"
    )
    return dict(kinds.most_common())


def _disturbed(phases: dict[str, Window]) -> Window | None:
    """From the fault phase's start to the recovery phase's end."""
    fault = phases.get("fault")
    if fault is None:
        return None
    recovery = phases.get("recovery")
    return Window("disturbed", fault.start, recovery.end if recovery else fault.end)
