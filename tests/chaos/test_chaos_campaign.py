"""The campaign table folds many runs' summaries into one row per scenario and backend,
and a campaign started again goes on from the runs already written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaos.report.campaign import campaign_table, collect, runs_done


def _write(root: Path, name: str, summary: dict[str, Any]) -> None:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "summary.json").write_text(json.dumps(summary))


def _summary(status: str, leader: float | None, spus: float | None, lost: int = 0,
             gap: float = 0.05, backend: str = "raft") -> dict[str, Any]:  # fmt: skip
    failovers = [] if leader is None else [
        {"new_leader": "sc-2", "leader_after": leader, "spus_after": spus}
    ]  # fmt: skip
    return {
        "scenario": "sc-leader-sigkill",
        "backend": backend,
        "status": status,
        "reason": None if status == "passed" else "lost_acks_all",
        "invariants": [
            {"name": "lost_acks_all", "meaning": "", "checked": True, "count": lost},
            {"name": "duplicates", "meaning": "", "checked": True, "count": 0},
            {"name": "unchecked", "meaning": "", "checked": False, "count": 0},
        ],
        "figures": {"failovers": failovers, "largest_ack_gap_s": gap},
    }


def test_runs_fold_into_median_and_worst(tmp_path: Path) -> None:
    _write(tmp_path, "a", _summary("passed", 0.8, 1.0))
    _write(tmp_path, "b", _summary("passed", 0.9, 1.2, gap=0.4))
    _write(tmp_path, "c", _summary("FAILED", 1.5, 3.0, lost=2))
    _write(tmp_path, "d", _summary("passed", None, None, backend="etcd"))

    runs = collect(tmp_path)
    raft = runs[("sc-leader-sigkill", "raft")]
    assert raft.runs == 3
    assert raft.statuses["passed"] == 2
    assert (raft.invariants_held, raft.invariant_checks) == (5, 6)
    assert raft.acks_all_lost == 2
    assert raft.worst_ack_gap == 0.4

    table = campaign_table(tmp_path)
    row = next(line for line in table.splitlines() if "| raft |" in line)
    assert "| 3 | 2 | 5 of 6 | 3 | 0.90 / 1.50 s | 1.20 / 3.00 s | 2 | 0.40 s |" in row
    assert "c: lost_acks_all" in row
    etcd = next(line for line in table.splitlines() if "| etcd |" in line)
    assert "| 1 | 1 | 2 of 2 | 0 | - | - | 0 |" in etcd


def test_a_campaign_counts_the_runs_it_already_has(tmp_path: Path) -> None:
    _write(tmp_path, "x/a", _summary("passed", 0.8, 1.0))
    _write(tmp_path, "x/b", _summary("skipped", None, None, backend="etcd"))
    done = runs_done(tmp_path)
    assert done[("sc-leader-sigkill", "raft")] == 1
    assert done[("sc-leader-sigkill", "etcd")] == 1
    assert runs_done(tmp_path / "nowhere") == {}


def test_a_stop_file_ends_a_campaign_before_its_next_run(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from chaos.cli import STOP_FILE, chaos

    (tmp_path / STOP_FILE).touch()
    result = CliRunner().invoke(
        chaos, ["suite", "--repeat", "3", "--backend", "raft", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "stopping before sc-leader-sigkill on raft" in result.output
    assert not list(tmp_path.rglob("summary.json"))
