"""Runs one scenario against a fresh cluster and writes its report directory.

Phases, each marked in the history: setup (cluster up, workload started), baseline,
fault (the scenario's step), recovery (every fault healed; an agreed leader and
Online SPUs awaited), drain (producers stop, the final read), check. Whatever
happens, every fault is healed and every member is ended by its PID before the
checkers run. The report directory holds ``history.jsonl``, ``summary.json``,
``timeline.png`` and the members' logs and data (``cluster/``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chaos.checkers.verdict import check
from chaos.cluster.topology import ChaosCluster, Shape
from chaos.faults.base import Injector, Unavailable
from chaos.history import collect
from chaos.history.history import History
from chaos.history.leader_reports import LeadershipWatch
from chaos.history.recorder import Recorder
from chaos.report.summary import RunSummary, summarize
from chaos.report.timeline import WITHOUT_MATPLOTLIB, draw_timeline
from chaos.scenarios.scenario import BASELINE_SHARE, FAULT_SHARE, FaultContext, Scenario
from chaos.workload.base import Idle, Workload
from ha_sc.tasks import Supervisor

log = logging.getLogger("chaos.runner")

RUN_LOGGERS = ("chaos", "ha_sc.client")
"""What the runner's own process logs to ``run.log``: faults, proxies, phases, and the
workload's client library."""
RECOVERY_TIMEOUT = 30.0

WorkloadFactory = Callable[[ChaosCluster, Recorder], Workload]


@dataclass(frozen=True)
class Plan:
    backend: str
    duration: float
    baseline: float
    fault: float
    recovery: float


def plan(scenario: Scenario, backend: str, duration: float | None) -> Plan:
    total = duration if duration is not None else scenario.duration
    baseline = total * BASELINE_SHARE
    fault = max(total * FAULT_SHARE, scenario.min_fault)
    recovery = max(1.0, total - baseline - fault)
    return Plan(backend, total, baseline, fault, recovery)


def skip_reason(scenario: Scenario, backend: str, workload: WorkloadFactory | None) -> str | None:
    if backend not in scenario.backends:
        return f"{scenario.name} applies to {', '.join(scenario.backends)} only"
    if scenario.data_plane and workload is None:
        return f"{scenario.name} needs the data plane (producers and consumers)"
    for requirement in scenario.requires:
        try:
            requirement()
        except Unavailable as missing:
            return f"{scenario.name} skipped: {missing}"
    return None


async def run(
    scenario: Scenario,
    *,
    backend: str,
    out: Path,
    duration: float | None = None,
    workload: WorkloadFactory | None = None,
) -> RunSummary:
    """Run ``scenario`` once; the summary (also written to ``<dir>/summary.json``)."""
    schedule = plan(scenario, backend, duration)
    directory = out / f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario.name}-{backend}"
    directory.mkdir(parents=True, exist_ok=True)
    reason = skip_reason(scenario, backend, workload)
    if reason is not None:
        return summarize(scenario, schedule, directory, None, skipped=reason)
    recorder = Recorder(directory / "history.jsonl")
    run_log = _log_to(directory / "run.log")
    cluster = ChaosCluster(directory / "cluster", Shape(backend=backend))
    injector = Injector(recorder)
    context = FaultContext(cluster, injector, recorder, schedule.fault)
    started = time.time()
    try:
        error = await _phases(scenario, schedule, context, workload)
    except Unavailable as missing:
        return summarize(scenario, schedule, directory, None, skipped=str(missing))
    finally:
        for name in RUN_LOGGERS:
            logging.getLogger(name).removeHandler(run_log)
        run_log.close()
    history = History.load(recorder.path)
    summary = summarize(
        scenario,
        schedule,
        directory,
        check(history),
        context=context,
        error=error,
        started=started,
        tracebacks=_tracebacks(cluster),
    )
    title = f"{scenario.name} on {backend}"
    if not draw_timeline(history, directory / "timeline.png", title=title):
        log.warning("%s: report written without timeline.png: %s", directory, WITHOUT_MATPLOTLIB)
    return summary


async def _phases(
    scenario: Scenario, schedule: Plan, context: FaultContext, workload: WorkloadFactory | None
) -> str | None:
    """Every phase up to the check; None, or why the run itself failed. Heals every
    fault, ends every member and closes the history whatever happens."""
    cluster, recorder, injector = context.cluster, context.recorder, context.injector
    tasks = Supervisor()
    load: Workload = Idle()
    try:
        recorder.phase("setup")
        await cluster.start()
        tasks.start("chaos-leadership-watch", LeadershipWatch(cluster.public, recorder).run())
        if workload is not None:
            load = workload(cluster, recorder)
            await load.start()
        log.info("cluster up: %s", ", ".join(f"{m.name} pid {m.pid}" for m in cluster.members))
        recorder.phase("baseline")
        await asyncio.sleep(schedule.baseline)
        recorder.phase("fault")
        context.started = time.monotonic()
        try:
            async with asyncio.timeout(schedule.fault + scenario.overrun):
                await scenario.fault(context)
        finally:
            await injector.heal_all()
        recorder.phase("recovery")
        await _recover(cluster, schedule.recovery)
        recorder.phase("drain")
        await load.stop()
        await load.drain()
    except Unavailable:
        raise
    except Exception as exc:
        log.exception("%s on %s: the run failed", scenario.name, schedule.backend)
        return f"{type(exc).__name__}: {exc}"
    finally:
        await injector.heal_all()
        await load.close()
        await tasks.stop()
        recorder.phase("check")
        await cluster.stop()
        _collect(cluster, recorder)
        recorder.close()
    return None


async def _recover(cluster: ChaosCluster, seconds: float) -> None:
    """Wait for an agreed leader and every SPU Online (bounded), then hold the rest of
    the recovery phase so the report shows the steady state again."""
    deadline = time.monotonic() + seconds
    for member in cluster.members:
        if not member.alive:
            log.warning("%s is down after the heal; starting it", member.name)
            member.start()
    await cluster.wait_for_leader(timeout=RECOVERY_TIMEOUT)
    await cluster.wait_spus_online(timeout=RECOVERY_TIMEOUT)
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))


def _collect(cluster: ChaosCluster, recorder: Recorder) -> None:
    """The SPUs' fence decisions and the SC replicas' logged leadership claims."""
    for spu in cluster.spus:
        for event in collect.control_events(cluster.spu_data_dir(spu)):
            recorder.record(event)
    for name, member in cluster.replicas.items():
        for claim in collect.leader_claims(name, member.log()):
            recorder.record(claim)


def _log_to(path: Path) -> logging.Handler:
    """The runner process's log (``RUN_LOGGERS``) into the report directory."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    return handler


def _tracebacks(cluster: ChaosCluster) -> dict[str, int]:
    counts = {m.name: m.log().count("Traceback") for m in cluster.members}
    return {name: n for name, n in counts.items() if n}
