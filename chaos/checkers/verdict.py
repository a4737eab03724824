"""Every checker and figure over one history, as the JSON summary of a run.

An invariant is a count that must be zero (or ``checked`` false when the history
cannot tell, e.g. no final read); the run passes when every checked invariant is
zero. Figures are reported, never judged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chaos.checkers import bulk, epochs, figures, records
from chaos.history.history import History

EXAMPLES = 10
"""How many offending items an invariant lists."""


class Invariant(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    meaning: str
    checked: bool
    count: int
    examples: list[Any] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.checked or self.count == 0


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    passed: bool
    invariants: list[Invariant]
    figures: dict[str, Any]


def check(history: History) -> Verdict:
    lost_all = records.lost_records(history, "all")
    lost_leader = records.lost_records(history, "leader")
    duplicates = records.duplicates(history)
    conflicts = records.inconsistent_offsets(history)
    refused_written = records.failed_but_present(history)
    stale = epochs.stale_accepts(history)
    shared = epochs.shared_epochs(history)
    has_reads = bool(history.reads)
    invariants = [
        Invariant(
            name="lost_acks_all",
            meaning="records acknowledged with acks=all missing from the final read",
            checked=lost_all.checked,
            count=len(lost_all.lost),
            examples=lost_all.lost[:EXAMPLES],
        ),
        Invariant(
            name="duplicates",
            meaning="records found at more than one offset",
            checked=has_reads,
            count=len(duplicates),
            examples=[[k, v] for k, v in list(duplicates.items())[:EXAMPLES]],
        ),
        Invariant(
            name="inconsistent_offsets",
            meaning="offsets at which reads (or a read and an ack) name different records",
            checked=has_reads,
            count=len(conflicts),
            examples=[dataclasses.asdict(c) for c in conflicts[:EXAMPLES]],
        ),
        Invariant(
            name="refused_but_written",
            meaning="produces the client was told failed that the final read has",
            checked=lost_all.checked,
            count=len(refused_written),
            examples=refused_written[:EXAMPLES],
        ),
        Invariant(
            name="stale_epoch_accepts",
            meaning="control messages an SPU accepted below an epoch it had accepted",
            checked=bool(history.controls),
            count=len(stale),
            examples=[dataclasses.asdict(s) for s in stale[:EXAMPLES]],
        ),
        Invariant(
            name="shared_epochs",
            meaning="epochs claimed by two SC replicas",
            checked=bool(history.leaders),
            count=len(shared),
            examples=[[e, r] for e, r in list(shared.items())[:EXAMPLES]],
        ),
    ]
    load = bulk.check_bulk(history)
    if history.bulks:
        invariants += _load_invariants(load)
    found = _figures(history, lost_leader)
    if history.bulks:
        found["load"] = {
            "acked": load.acked,
            "unknown_outcome": load.unknown,
            "records_per_s": None if load.records_per_s is None else round(load.records_per_s),
        }
    return Verdict(passed=all(i.ok for i in invariants), invariants=invariants, figures=found)


def _load_invariants(load: bulk.BulkCheck) -> list[Invariant]:
    """The bulk load's own invariants (only in runs with a bulk load)."""
    return [
        Invariant(
            name="lost_acks_all_load",
            meaning="bulk-load records acknowledged (acks=all) that the final read does not "
            "hold at the offset acknowledged",
            checked=load.checked,
            count=load.lost,
            examples=[list(e) for e in load.lost_examples],
        ),
        Invariant(
            name="duplicates_load",
            meaning="bulk-load records read at more than one offset",
            checked=load.checked,
            count=load.duplicates,
        ),
    ]


def _figures(history: History, lost_leader: records.Losses) -> dict[str, Any]:
    gap = figures.largest_ack_gap(history)
    dip = figures.throughput_dip(history)
    latency = figures.latency_ratio(history)
    produced = history.produces
    return {
        "produced": len(produced),
        "acked": sum(1 for p in produced if p.outcome == "ok"),
        "acked_all": sum(1 for p in produced if p.outcome == "ok" and p.acks == "all"),
        "acked_leader": lost_leader.acked,
        "lost_acks_leader": len(lost_leader.lost),
        "unknown_outcome": sum(1 for p in produced if p.outcome == "unknown"),
        "unknown_but_written": records.indeterminate_landed(history),
        "read_final": len(history.final_reads),
        "client_errors": figures.client_errors(history),
        "failovers": [dataclasses.asdict(f) for f in figures.failovers(history)],
        "leadership_changes": epochs.leadership_changes(history),
        "spu_refusals": epochs.refusals(history),
        "largest_ack_gap_s": None if gap is None else gap.seconds,
        "largest_ack_gap_by_partition_s": figures.largest_ack_gap_by_partition(history),
        "throughput_steady_median": None if dip is None else dip.steady_median,
        "throughput_lowest_bucket": None if dip is None else dip.lowest,
        "throughput_dip_ratio": None if dip is None else dip.ratio,
        "latency_p99_baseline_s": latency.baseline_p99,
        "latency_p99_fault_s": latency.fault_p99,
        "latency_p99_ratio": latency.ratio,
    }
