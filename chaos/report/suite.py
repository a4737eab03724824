"""A Markdown table of every run under a reports directory (``ha-sc chaos report DIR``),
one row per run, from each run's ``summary.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaos.report.summary import SUMMARY_FILE

HEADER = (
    "| scenario | backend | status | new SC leader after | every SPU after | largest ack gap "
    "(per partition) | lowest 1-s / median | p99 fault / baseline | acks=all lost "
    "| acks=leader lost | client errors |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def suite_table(directory: Path) -> str:
    rows = [
        _row(json.loads(path.read_text())) for path in sorted(directory.glob(f"*/{SUMMARY_FILE}"))
    ]
    return "\n".join([HEADER, *rows])


def _row(s: dict[str, Any]) -> str:
    f = s.get("figures", {})
    invariants = {i["name"]: i for i in s.get("invariants", [])}
    lost_all = invariants.get("lost_acks_all", {})
    failovers = [fo for fo in f.get("failovers", []) if fo.get("new_leader")]
    leader_after = ", ".join(_s(fo["leader_after"]) for fo in failovers) or "-"
    spus_after = ", ".join(_s(fo["spus_after"]) for fo in failovers) or "-"
    gaps = f.get("largest_ack_gap_by_partition_s") or {}
    status = s["status"] + (
        f" ({s['reason']})" if s.get("reason") and s["status"] != "passed" else ""
    )
    cells = [
        s["scenario"],
        s["backend"],
        status,
        leader_after,
        spus_after,
        f"{_s(f.get('largest_ack_gap_s'))} ({', '.join(_s(g) for g in gaps.values()) or '-'})",
        _r(f.get("throughput_dip_ratio")),
        _r(f.get("latency_p99_ratio")),
        str(lost_all.get("count", "-")) if lost_all.get("checked") else "n/a",
        str(f.get("lost_acks_leader", "-")),
        ", ".join(f"{k} {v}" for k, v in (f.get("client_errors") or {}).items()) or "0",
    ]
    return "| " + " | ".join(cells) + " |"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _r(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
