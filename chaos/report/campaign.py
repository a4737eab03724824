"""A campaign: every scenario run many times on each backend, and one row per scenario
and backend with the runs, the invariants held and the failover figures (median and worst).

``ha-sc chaos suite --all --repeat 10 --out DIR`` runs it in rounds (each round every
scenario once on each backend), so a campaign cut short still covers every scenario
evenly, and started again with the same ``--out`` it goes on from the runs already there.
``ha-sc chaos report DIR --by-scenario`` prints the table.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.report.summary import SUMMARY_FILE

HEADER = (
    "| scenario | backend | runs | passed | invariants held | failovers "
    "| new SC leader after (median / worst) | every SPU after (median / worst) "
    "| acks=all lost | largest ack gap (worst) | not passed |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


@dataclass
class ScenarioRuns:
    """What every run of one scenario on one backend showed."""

    scenario: str
    backend: str
    statuses: Counter[str] = field(default_factory=Counter)
    invariant_checks: int = 0
    invariants_held: int = 0
    leader_after: list[float] = field(default_factory=list)
    spus_after: list[float] = field(default_factory=list)
    acks_all_lost: int = 0
    worst_ack_gap: float | None = None
    not_passed: list[str] = field(default_factory=list)

    @property
    def runs(self) -> int:
        """Runs that ran (a skipped run does not count)."""
        return sum(n for status, n in self.statuses.items() if status != "skipped")

    def add(self, summary: dict[str, Any], directory: Path) -> None:
        status = str(summary["status"])
        self.statuses[status] += 1
        if status == "skipped":
            return
        if status != "passed":
            self.not_passed.append(f"{directory.name}: {summary.get('reason')}")
        for invariant in summary.get("invariants", []):
            if invariant.get("checked", True):
                self.invariant_checks += 1
                self.invariants_held += int(invariant.get("count", 0) == 0)
                if invariant.get("name") == "lost_acks_all":
                    self.acks_all_lost += int(invariant.get("count", 0))
        figures = summary.get("figures", {})
        for failover in figures.get("failovers", []):
            if failover.get("new_leader") is None:
                continue
            if failover.get("leader_after") is not None:
                self.leader_after.append(float(failover["leader_after"]))
            if failover.get("spus_after") is not None:
                self.spus_after.append(float(failover["spus_after"]))
        gap = figures.get("largest_ack_gap_s")
        if gap is not None:
            self.worst_ack_gap = max(float(gap), self.worst_ack_gap or 0.0)


def collect(directory: Path) -> dict[tuple[str, str], ScenarioRuns]:
    """Every run under ``directory`` (at any depth), by scenario and backend."""
    found: dict[tuple[str, str], ScenarioRuns] = {}
    for path in sorted(directory.rglob(SUMMARY_FILE)):
        summary = json.loads(path.read_text())
        key = (str(summary["scenario"]), str(summary["backend"]))
        found.setdefault(key, ScenarioRuns(*key)).add(summary, path.parent)
    return found


def runs_done(directory: Path) -> Counter[tuple[str, str]]:
    """How many runs of each scenario and backend a campaign directory already holds
    (skipped runs included: they would be skipped again)."""
    if not directory.exists():
        return Counter()
    return Counter({key: sum(r.statuses.values()) for key, r in collect(directory).items()})


def campaign_table(directory: Path) -> str:
    rows = [_row(r) for _, r in sorted(collect(directory).items())]
    return "\n".join([HEADER, *rows])


def _row(r: ScenarioRuns) -> str:
    if r.runs == 0:
        return f"| {r.scenario} | {r.backend} | skipped | - | - | - | - | - | - | - | - |"
    cells = [
        r.scenario,
        r.backend,
        str(r.runs),
        str(r.statuses.get("passed", 0)),
        f"{r.invariants_held} of {r.invariant_checks}",
        str(len(r.leader_after)),
        _spread(r.leader_after),
        _spread(r.spus_after),
        str(r.acks_all_lost),
        "-" if r.worst_ack_gap is None else f"{r.worst_ack_gap:.2f} s",
        "; ".join(r.not_passed) or "-",
    ]
    return "| " + " | ".join(cells) + " |"


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} / {max(values):.2f} s"
