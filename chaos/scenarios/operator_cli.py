"""Operator paths under a frozen SC replica: the real ``ha-sc`` command run against the
cluster's public endpoints while one replica is SIGSTOPped. Every verb must answer
correctly, within lease TTL + 1 s from the moment its modules are loaded
(``chaos.timed_cli``: the interpreter's start-up, seconds on a loaded machine, is the
host's cost, not the cluster's); a verb that never answers is ended after
``VERB_TIMEOUT`` and counted as hung. Each verb's whole process time is in the notes."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from chaos.faults.process import Pause
from chaos.scenarios.scenario import FaultContext, Scenario

LEASE_TTL = {"raft": 0.8, "etcd": 2.0}
"""Each backend's lease TTL (s) as the chaos cluster runs it."""
ISSUE_MARGIN = 1.0
"""The issue's bound: every verb answers within lease TTL + this."""
VERB_TIMEOUT = 60.0
TOPIC = "chaos-cli"


@dataclass(frozen=True)
class VerbRun:
    verb: str
    code: int
    seconds: float
    """The process's whole life, the interpreter's start-up included."""
    output: str
    answer_s: float | None = None
    """From the CLI's modules loaded to its exit (None: it never got that far)."""


async def ha_sc(ctx: FaultContext, *args: str, stdin: bytes | None = None) -> VerbRun:
    """One run of the ``ha-sc`` command with the cluster's public endpoints."""
    endpoints = ",".join(ctx.cluster.public.values())
    with tempfile.TemporaryDirectory(prefix="chaos-cli-") as scratch:
        report = Path(scratch) / "timing.json"
        run = await _timed(report, *args, "--sc", endpoints, stdin=stdin)
        try:
            answer_s: float | None = float(json.loads(report.read_text())["answer_s"])
        except (OSError, ValueError, KeyError):
            answer_s = None
    return VerbRun(run.verb, run.code, run.seconds, run.output, answer_s)


async def _timed(report: Path, *args: str, stdin: bytes | None) -> VerbRun:
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chaos.timed_cli", str(report), *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(stdin), VERB_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return VerbRun(" ".join(args[:2]), -1, time.monotonic() - started, "no answer")
    return VerbRun(
        " ".join(args[:2]), proc.returncode or 0, time.monotonic() - started, out.decode()
    )


def verb_is_right(run: VerbRun, expect: str | None) -> bool:
    return run.code == 0 and (expect is None or expect in run.output)


def verb_steps(topic: str) -> list[tuple[tuple[str, ...], str | None]]:
    """Every verb in an operator's order, each with what its answer must contain."""
    return [
        (("topic", "create", topic, "--partitions", "1", "--replication", "1"), None),
        (("topic", "list", "-O", "json"), f'"{topic}"'),
        (("topic", "describe", topic, "-O", "json"), f'"{topic}"'),
        (("partition", "list", "-O", "json"), f'"{topic}-0"'),
        (("spu", "list", "-O", "json"), "5001"),
        (("topic", "delete", topic), None),
    ]


OVERRUN = (len(verb_steps(TOPIC)) + 1) * VERB_TIMEOUT
"""The fault step starts the CLI once bare and once per verb, one after another: on a
saturated host each start alone takes seconds, so the step may run this long before
the run is ended (a verb that hangs is ended at ``VERB_TIMEOUT`` and judged hung)."""


async def operator_verbs(ctx: FaultContext, topic: str) -> list[tuple[VerbRun, bool]]:
    """Every verb in an operator's order, each with whether it answered correctly."""
    results = []
    for args, expect in verb_steps(topic):
        run = await ha_sc(ctx, *args)
        results.append((run, verb_is_right(run, expect)))
    return results


async def cli_start_cost(ctx: FaultContext) -> float:
    """Seconds the CLI takes to start and exit with nothing to ask (``--help``)."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ha_sc.cli", "--help", stdout=asyncio.subprocess.DEVNULL
    )
    await proc.wait()
    return time.monotonic() - started


def judge(ctx: FaultContext, results: list[tuple[VerbRun, bool]], start_cost: float) -> None:
    ttl = LEASE_TTL[ctx.cluster.shape.backend]
    issue_bound = ttl + ISSUE_MARGIN
    ctx.notes["verb_seconds"] = {r.verb: round(r.seconds, 3) for r, _ in results}
    ctx.notes["verb_answer_seconds"] = {r.verb: r.answer_s for r, _ in results}
    ctx.notes["cli_start_seconds"] = round(start_cost, 3)
    ctx.notes["answer_bound_seconds"] = issue_bound
    wrong: list[object] = [
        f"{r.verb}: exit {r.code}: {r.output.strip()[-300:]}" for r, ok in results if not ok
    ]
    ctx.expect("cli_verb_wrong", "a CLI verb failed or answered wrongly during the fault",
               len(wrong), wrong)  # fmt: skip
    late: list[object] = [
        f"{r.verb}: answered {r.answer_s:.2f} s after its start" for r, _ in results
        if r.answer_s is not None and r.answer_s > issue_bound
    ]  # fmt: skip
    ctx.expect("cli_verb_slow", f"a CLI verb answered later than lease TTL + {ISSUE_MARGIN:g} s "
               f"({issue_bound:g} s) after its modules were loaded", len(late), late)  # fmt: skip
    hung: list[object] = [
        f"{r.verb}: no answer in {r.seconds:.2f} s (ended)" for r, _ in results
        if r.answer_s is None
    ]  # fmt: skip
    ctx.expect("cli_verb_hung", f"a CLI verb never answered (ended after {VERB_TIMEOUT:g} s)",
               len(hung), hung)  # fmt: skip


async def cli_frozen_standby(ctx: FaultContext) -> None:
    """One SC standby SIGSTOPped; every CLI verb run during the fault."""
    name, _ = await ctx.leader()
    standby = ctx.cluster.replicas[sorted(r for r in ctx.cluster.replicas if r != name)[0]]
    ctx.notes["frozen"] = standby.name
    start_cost = await cli_start_cost(ctx)
    async with ctx.injector.applied(Pause(standby)):
        results = await operator_verbs(ctx, TOPIC)
        await ctx.hold()
    judge(ctx, results, start_cost)


async def cli_frozen_leader(ctx: FaultContext) -> None:
    """The SC leader SIGSTOPped past its lease; once a new leader is elected, every CLI
    verb run while the old one is still frozen."""
    leader, epoch = await ctx.leader_member()
    ctx.notes["frozen"] = leader.name
    start_cost = await cli_start_cost(ctx)
    async with ctx.injector.applied(Pause(leader)):
        new, _ = await ctx.new_leader(epoch)
        ctx.notes["new_leader"] = new
        results = await operator_verbs(ctx, TOPIC)
        await ctx.hold()
    judge(ctx, results, start_cost)


SCENARIOS = [
    Scenario(
        "cli-frozen-standby",
        "one SC standby SIGSTOPped; every ha-sc CLI verb answers correctly, none hangs",
        cli_frozen_standby,
        quick=False,
        duration=30.0,
        min_fault=10.0,
        overrun=OVERRUN,
    ),
    Scenario(
        "cli-frozen-leader",
        "SC leader SIGSTOPped past its lease; after the new leader, every CLI verb answers",
        cli_frozen_leader,
        quick=False,
        duration=30.0,
        min_fault=12.0,
        overrun=OVERRUN,
    ),
]
