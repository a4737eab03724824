"""``ha-sc chaos list|run|suite|soak``: fault-injection scenarios against a fresh local
cluster, each run writing a report directory (history, summary, timeline).

A plugin verb of ``ha-sc``: registered under the ``ha_sc.cli_plugins`` entry points
(pyproject.toml), so the product CLI never imports this package to start."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ha_sc.cli.duration import Duration, help_suffix

if TYPE_CHECKING:  # the chaos package (and matplotlib) load only when a chaos verb runs
    from chaos.report.summary import RunSummary
    from chaos.scenarios.scenario import Scenario

BACKENDS = ("raft", "etcd")
OUT_HELP = "Where each run's report directory is written."
LOAD_HELP = (
    "Records a second of bulk load (acks=all, send_many calls of 1000) beside the "
    "workload, checked by the range; 0: none."
)
DEFAULT_OUT = Path("chaos-reports")
STOP_FILE = "STOP"
"""A file under --out that ends a suite after the run under way."""


@click.group()
def chaos() -> None:
    """Chaos scenarios: faults injected into a live local cluster, then checked.

    Progress goes to each run's run.log; the terminal gets warnings and the summaries.
    """
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    for name in ("chaos", "ha_sc.client"):
        logger = logging.getLogger(name)
        logger.propagate = False
        logger.addHandler(console)


@chaos.command("list")
def list_scenarios() -> None:
    """Every scenario, the backends it applies to, and whether the quick suite runs it."""
    from chaos.scenarios.registry import SCENARIOS

    click.echo(f"{'SCENARIO':<26} {'BACKENDS':<10} {'QUICK':<5} WHAT")
    for s in SCENARIOS.values():
        quick = "yes" if s.quick else "-"
        data = " (needs the data plane)" if s.data_plane else ""
        click.echo(f"{s.name:<26} {','.join(s.backends):<10} {quick:<5} {s.summary}{data}")


@chaos.command("run")
@click.argument("name")
@click.option("--backend", type=click.Choice(BACKENDS), default="raft", show_default=True)
@click.option(
    "--duration", type=Duration(minimum=0), help="Baseline + fault + recovery. " + help_suffix()
)
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, help=OUT_HELP)
@click.option("--load", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help=LOAD_HELP)  # fmt: skip
def run_one(name: str, backend: str, duration: float | None, out: Path, load: float) -> None:
    """Run scenario NAME once on a fresh cluster and print its summary."""
    from chaos.scenarios.registry import scenario

    try:
        chosen = scenario(name)
    except KeyError as unknown:
        raise click.BadParameter(str(unknown.args[0]), param_hint="NAME") from None
    _exit([_run(chosen, backend, duration, out, load)])


@chaos.command("suite")
@click.option("--backend", "backends", type=click.Choice(BACKENDS), multiple=True,
              help="Repeat for both; default both.")  # fmt: skip
@click.option("--all", "everything", is_flag=True, help="Every scenario, not only the quick ones.")
@click.option("--duration", type=Duration(minimum=0),
              help="Per run (default: each scenario's own). " + help_suffix())  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, help=OUT_HELP)
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs of each scenario on each backend, in rounds (each round runs every "
              "scenario once); runs already under --out count, so a cut-short campaign "
              f"goes on where it stopped. Creating --out/{STOP_FILE} stops it after the run "
              "under way.")  # fmt: skip
def suite(
    backends: tuple[str, ...], everything: bool, duration: float | None, out: Path, repeat: int
) -> None:
    """Run the quick suite (or --all) on each backend; one line per run at the end."""
    from chaos.report.campaign import runs_done
    from chaos.scenarios.registry import SCENARIOS, quick_suite

    chosen = (
        [s for s in SCENARIOS.values() if s.name not in ("soak", "manual")]
        if everything
        else quick_suite()
    )
    done = runs_done(out) if repeat > 1 else {}
    planned = [
        (s, backend)
        for round_ in range(repeat)
        for backend in backends or BACKENDS
        for s in chosen
        if backend in s.backends and done.get((s.name, backend), 0) <= round_
    ]
    stop = out / STOP_FILE
    results = []
    for s, backend in planned:
        if stop.exists():
            click.echo(f"{stop} exists: stopping before {s.name} on {backend}", err=True)
            break
        results.append(_run(s, backend, duration, out))
    click.echo("\nsuite:")
    for r in results:
        click.echo(f"  {r.scenario:<26} {r.backend:<5} {r.status:<8} {r.reason or ''}")
    _exit(results)


@chaos.command("soak")
@click.option("--backend", type=click.Choice(BACKENDS), default="raft", show_default=True)
@click.option("--duration", type=Duration(minimum=0), default=120.0, show_default=True,
              help="The whole run; about half of it random faults. " + help_suffix())  # fmt: skip
@click.option("--seed", type=int, help="Seed of the fault schedule (to replay one).")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, help=OUT_HELP)
@click.option("--load", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help=LOAD_HELP)  # fmt: skip
def soak(backend: str, duration: float, seed: int | None, out: Path, load: float) -> None:
    """Random faults one after another, then recovery and every check."""
    from chaos.scenarios.soak import soak_scenario

    _exit([_run(soak_scenario(seed), backend, duration, out, load)])


@chaos.command("report")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--by-scenario", is_flag=True,
              help="One row per scenario and backend over all its runs (a --repeat campaign): "
              "runs, invariants held, failover seconds median and worst.")  # fmt: skip
def report(directory: Path, by_scenario: bool) -> None:
    """A Markdown table of every run under DIRECTORY (an --out of run, suite or soak)."""
    if by_scenario:
        from chaos.report.campaign import campaign_table

        click.echo(campaign_table(directory))
        return
    from chaos.report.suite import suite_table

    click.echo(suite_table(directory))


def _run(
    chosen: Scenario, backend: str, duration: float | None, out: Path, load: float = 0.0
) -> RunSummary:
    from chaos.report.summary import table
    from chaos.runner import run
    from chaos.workload.available import streaming_workload

    click.echo(f"== {chosen.name} on {backend}", err=True)
    summary = asyncio.run(
        run(
            chosen,
            backend=backend,
            out=out,
            duration=duration,
            workload=streaming_workload(load),
        )
    )
    click.echo(table(summary))
    return summary


def _exit(results: list[RunSummary]) -> None:
    if not all(r.passed for r in results):
        sys.exit(1)
