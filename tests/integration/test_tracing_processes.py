"""Tracing across OS processes: members started by `cluster up` export their spans to
files (joined by trace and parent span ids) or over OTLP/HTTP to a receiver here."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.waiting import eventually

pytestmark = [pytest.mark.raft, pytest.mark.slow]


async def ha_sc(directory: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run the CLI on cluster ``directory``; its output (it must succeed)."""
    environment = {**os.environ, "HA_SC_DIR": str(directory), **(env or {})}
    environment.pop("HA_SC_ENDPOINTS", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ha_sc.cli",
        "--log-level",
        "warning",
        *args,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    text = output.decode()
    assert process.returncode == 0, text
    return text


@pytest.fixture
async def cluster_dir(tmp_path: Path) -> AsyncIterator[Path]:
    directory = tmp_path / "cluster"
    try:
        yield directory
    finally:
        if (directory / "cluster.json").exists():
            await ha_sc(directory, "cluster", "down")
        shutil.rmtree(directory, ignore_errors=True)


def spans_in(directory: Path) -> list[dict[str, Any]]:
    spans = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.endswith("}"):  # a line still being written is left for the next look
                spans.append(json.loads(line))
    return spans


def chain_of(spans: list[dict[str, Any]], span: dict[str, Any]) -> list[dict[str, Any]]:
    """``span``'s ancestors, nearest first, joined by trace id and parent span id."""
    by_id = {(s["trace_id"], s["span_id"]): s for s in spans}
    found = []
    parent = span.get("parent_span_id")
    while parent is not None and (span["trace_id"], parent) in by_id:
        found.append(by_id[(span["trace_id"], parent)])
        parent = found[-1].get("parent_span_id")
    return found


def applied_after_create(spans: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The chain of an SPU's apply of a partition of ``orders`` pushed after the create
    stored it (the create's own write stores a topic with its partitions), if the files
    hold one yet."""
    for span in spans:
        if span["service"] != "ha-sc-spu" or not span["name"].endswith("apply delta"):
            continue
        chain = chain_of(spans, span)
        names = [s["name"] for s in chain]
        if (
            names
            and names[0].startswith("push delta to spu")
            and "kv create partitions/orders-0" in names
        ):
            return [span, *chain]
    return None


async def test_the_spus_apply_in_its_process_descends_from_the_scs_push_and_the_create(
    cluster_dir: Path,
) -> None:
    traces = cluster_dir / "traces"
    await ha_sc(
        cluster_dir, "cluster", "up", "--replicas", "1", "--spus", "1", "--trace-file", str(traces)
    )
    assert json.loads((cluster_dir / "cluster.json").read_text())["trace_dir"] == str(traces)
    await ha_sc(cluster_dir, "topic", "create", "orders", "-p", "1", "-r", "1")
    chain = await eventually(lambda: applied_after_create(spans_in(traces)), timeout=30)
    apply, push = chain[0], chain[1]
    assert apply["resource"]["ha_sc.spu_id"] == 5001
    assert push["service"] == "ha-sc-sc" and push["attributes"]["spu_id"] == 5001
    assert chain[-1]["name"] == "POST /api/v1/topics"  # one trace from the request
    assert {s["trace_id"] for s in chain} == {apply["trace_id"]}

    shown = await ha_sc(cluster_dir, "trace", "show", str(traces), "--trace-id", apply["trace_id"])
    lines = shown.splitlines()
    assert lines[1].startswith("  POST /api/v1/topics")
    depth = {line.strip().split("  ")[0]: len(line) - len(line.lstrip()) for line in lines[1:]}
    assert depth[apply["name"]] == depth[push["name"]] + 2


class OtlpReceiver:
    """An OTLP/HTTP trace endpoint: keeps each export request, decoded."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []

    async def take(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        self.requests.append(export)
        return web.Response(body=b"", content_type="application/x-protobuf")

    def resources(self) -> dict[str, dict[str, Any]]:
        """Each exporting member's resource attributes, by its service.instance.id."""
        found: dict[str, dict[str, Any]] = {}
        for export in self.requests:
            for spans in export.resource_spans:
                attributes = {
                    a.key: getattr(a.value, a.value.WhichOneof("value"))
                    for a in spans.resource.attributes
                }
                found[attributes["service.instance.id"]] = attributes
        return found


async def test_a_three_replica_cluster_exports_over_otlp_http_with_its_resources(
    cluster_dir: Path,
) -> None:
    receiver = OtlpReceiver()
    app = web.Application()
    app.router.add_post("/v1/traces", receiver.take)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    try:
        await ha_sc(cluster_dir, "cluster", "up", "--replicas", "3", "--spus", "2", env=env)
        await ha_sc(cluster_dir, "topic", "create", "orders", "-p", "2", "-r", "2")
        members = {"sc-1", "sc-2", "sc-3", "spu-5001", "spu-5002"}
        # a standby exports too: every replica serves cluster up's API polling; each member
        # exports on its own schedule, so the leader's write may come after the others
        resources = await eventually(
            receiver.resources, until=lambda found: set(found) == members, timeout=30
        )
        names = await eventually(
            lambda: _span_names(receiver),
            until=lambda found: (
                "kv create topics/orders" in found
                and any(name.startswith("spu 5001 apply") for name in found)
            ),
            timeout=30,
        )
    finally:
        await runner.cleanup()
    for replica in ("sc-1", "sc-2", "sc-3"):
        assert resources[replica]["service.name"] == "ha-sc-sc"
        assert resources[replica]["ha_sc.replica_id"] == replica
        assert resources[replica]["ha_sc.backend"] == "raft"
        assert resources[replica]["ha_sc.role"] == "sc"
    for spu_id in (5001, 5002):
        spu = resources[f"spu-{spu_id}"]
        assert spu["service.name"] == "ha-sc-spu"
        assert spu["ha_sc.spu_id"] == spu_id and spu["ha_sc.role"] == "spu"
    assert "kv create topics/orders" in names
    assert any(name.startswith("spu 5001 apply") for name in names)


def _span_names(receiver: OtlpReceiver) -> set[str]:
    return {
        span.name
        for export in receiver.requests
        for spans in export.resource_spans
        for scope in spans.scope_spans
        for span in scope.spans
    }


def failover_of(spans: list[dict[str, Any]], epoch: int) -> list[dict[str, Any]] | None:
    """The spans of the trace of ``leadership won epoch <epoch>`` once it holds an SPU's
    apply of the new leader's full sync (or resync by cursor)."""
    won = [s for s in spans if s["name"] == f"leadership won epoch {epoch}"]
    if not won:
        return None
    trace = [s for s in spans if s["trace_id"] == won[0]["trace_id"]]
    applied = [s for s in trace if s["name"].endswith(("apply full_sync", "apply resync"))]
    return trace if applied else None


async def test_a_failover_is_one_trace_from_the_win_to_the_spus_full_sync(
    cluster_dir: Path,
) -> None:
    traces = cluster_dir / "traces"
    await ha_sc(
        cluster_dir, "cluster", "up", "--replicas", "3", "--spus", "1", "--trace-file", str(traces)
    )
    status = json.loads(await ha_sc(cluster_dir, "cluster", "status", "-O", "json"))
    leader = status["leader"]
    first = await eventually(lambda: failover_of(spans_in(traces), leader["epoch"]), timeout=30)
    assert {s["resource"]["service.instance.id"] for s in first} >= {leader["id"], "spu-5001"}
    os.kill(leader["pid"], signal.SIGKILL)
    after = leader["epoch"] + 1
    trace = await eventually(lambda: failover_of(spans_in(traces), after), timeout=30)
    won = next(s for s in trace if s["name"] == f"leadership won epoch {after}")
    assert won["resource"]["service.instance.id"] != leader["id"]
    assert won["attributes"]["epoch"] == after
    marks = [s for s in trace if s["name"].startswith("kv progress mark")]
    assert marks and all(s["parent_span_id"] == won["span_id"] for s in marks)
    (applied,) = [s for s in trace if s["name"] == "spu 5001 apply resync"]  # by its cursor
    assert applied["attributes"]["epoch"] == after
    shown = await ha_sc(cluster_dir, "trace", "show", str(traces), "--trace-id", won["trace_id"])
    assert f"leadership won epoch {after}" in shown.splitlines()[1]
