"""``summary.json``: a run's verdict, every checker and figure, and what the scenario
noted; and the one-screen table printed at the end of a run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from chaos.checkers.verdict import Invariant, Verdict

if TYPE_CHECKING:
    from chaos.runner import Plan
    from chaos.scenarios.scenario import FaultContext, Scenario

SUMMARY_FILE = "summary.json"


class RunSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    scenario: str
    description: str
    backend: str
    directory: str
    started_at: str = ""
    phases_s: dict[str, float] = Field(default_factory=dict)
    """Planned seconds of baseline, fault and recovery."""
    status: str
    """passed, FAILED (an invariant broken), error (the run itself failed), skipped."""
    reason: str | None = None
    invariants: list[Invariant] = Field(default_factory=list)
    figures: dict[str, Any] = Field(default_factory=dict)
    notes: dict[str, Any] = Field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status in ("passed", "skipped")


def summarize(
    scenario: Scenario,
    plan: Plan,
    directory: Path,
    verdict: Verdict | None,
    *,
    skipped: str | None = None,
    context: FaultContext | None = None,
    error: str | None = None,
    started: float | None = None,
    tracebacks: dict[str, int] | None = None,
) -> RunSummary:
    """The summary of one run, written to ``directory/summary.json``."""
    invariants = list(verdict.invariants) if verdict else []
    if context is not None:
        invariants += context.expectations
    broken = [i for i in invariants if not i.ok]
    if skipped is not None:
        status, reason = "skipped", skipped
    elif error is not None:
        status, reason = "error", error
    elif broken:
        status, reason = "FAILED", ", ".join(i.name for i in broken)
    else:
        status, reason = "passed", None
    figures = dict(verdict.figures) if verdict else {}
    if tracebacks:
        figures["member_tracebacks"] = tracebacks
    summary = RunSummary(
        scenario=scenario.name,
        description=scenario.summary,
        backend=plan.backend,
        directory=str(directory),
        started_at=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)) if started else "",
        phases_s={"baseline": plan.baseline, "fault": plan.fault, "recovery": plan.recovery},
        status=status,
        reason=reason,
        invariants=invariants,
        figures=figures,
        notes=dict(context.notes) if context else {},
    )
    (directory / SUMMARY_FILE).write_text(
        json.dumps(summary.model_dump(mode="json"), indent=2) + "\n"
    )
    return summary


def table(summary: RunSummary) -> str:
    """One screen: the verdict, each invariant, the headline figures."""
    f = summary.figures
    lines = [
        f"{summary.scenario} on {summary.backend}: {summary.status}"
        + (f" ({summary.reason})" if summary.reason else ""),
        f"  {summary.description}",
        f"  report: {summary.directory}",
    ]
    if summary.status == "skipped":
        return "\n".join(lines)
    lines.append(f"  {'invariant':<26} {'count':>6}  ")
    for i in summary.invariants:
        mark = "n/a" if not i.checked else ("ok" if i.ok else "BROKEN")
        lines.append(f"  {i.name:<26} {i.count if i.checked else '-':>6}  {mark}")
    failovers = f.get("failovers") or []
    for fo in failovers:
        if fo["new_leader"] is None:
            lines.append(f"  fault {fo['fault']} on {fo['target']}: no SC leader change")
            continue
        lines.append(
            f"  fault {fo['fault']} on {fo['target']}: new leader {fo['new_leader']} "
            f"epoch {fo['new_epoch']} after {_s(fo['leader_after'])}, "
            f"every SPU after {_s(fo['spus_after'])}"
        )
    rows = [
        ("produced / acked", f"{f.get('produced', 0)} / {f.get('acked', 0)}"),
        ("acks=leader lost", f.get("lost_acks_leader")),
        ("largest ack gap", _s(f.get("largest_ack_gap_s"))),
        ("  by partition", _gaps(f.get("largest_ack_gap_by_partition_s") or {})),
        ("lowest 1-s bucket / median", _ratio(f.get("throughput_dip_ratio"))),
        ("p99 latency fault / baseline", _ratio(f.get("latency_p99_ratio"))),
        ("client errors", f.get("client_errors") or {}),
        ("SPU refusals", f.get("spu_refusals") or {}),
    ]
    if f.get("load"):
        load = f["load"]
        rows.append(
            ("bulk load acked (acks=all)", f"{load['acked']} records, {load['records_per_s']} "
             f"records/s; unknown outcome {load['unknown_outcome']}")
        )  # fmt: skip
    if f.get("member_tracebacks"):
        rows.append(("tracebacks in logs", f["member_tracebacks"]))
    lines += [f"  {name:<28} {value}" for name, value in rows]
    return "\n".join(lines)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _gaps(gaps: dict[str, float]) -> str:
    return ", ".join(f"{key} {seconds:.2f} s" for key, seconds in gaps.items()) or "-"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
