"""The quick chaos suite: each quick scenario against a fresh cluster of real processes
on each backend it applies to; every invariant must hold.

Run it alone with ``pytest -m chaos``; each run leaves its report directory (history,
summary, timeline) under the test's tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.report.summary import table
from chaos.runner import run
from chaos.scenarios.registry import quick_suite
from chaos.workload.available import streaming_workload

DURATION = 10.0
"""Seconds of baseline + fault + recovery per run (scenarios with a longer minimum
fault phase take that)."""

RUNS = [
    pytest.param(s.name, backend, marks=[getattr(pytest.mark, backend)], id=f"{s.name}-{backend}")
    for s in quick_suite()
    for backend in s.backends
]

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.mark.parametrize(("name", "backend"), RUNS)
async def test_scenario_keeps_every_invariant(name: str, backend: str, tmp_path: Path) -> None:
    from chaos.scenarios.registry import scenario

    summary = await run(
        scenario(name),
        backend=backend,
        out=tmp_path,
        duration=DURATION,
        workload=streaming_workload(),
    )
    assert summary.status in ("passed", "skipped"), table(summary)
    assert (Path(summary.directory) / "summary.json").exists()
    if summary.status == "passed":
        assert (Path(summary.directory) / "timeline.png").exists()
        checked = {i.name for i in summary.invariants if i.checked}
        assert {"stale_epoch_accepts", "shared_epochs"} <= checked
