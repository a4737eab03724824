"""Which exporters the OTEL_* settings ask for, the span file, and `trace show` on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from ha_sc.cli.main import cli
from ha_sc.telemetry.tracing import TracingConfigError, exporter_names, start_tracing
from ha_sc.telemetry.tracing_file import SpanFileExporter, read_span_files
from ha_sc.telemetry.tracing_tree import build_traces, render, select


def test_nothing_is_exported_unless_asked_for() -> None:
    assert exporter_names({}, None) == []
    assert start_tracing("ha-sc-sc", {}, env={}) is None


def test_an_otlp_endpoint_turns_otlp_on_and_a_span_file_adds_the_file() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert exporter_names(env, None) == ["otlp"]
    assert exporter_names(env, Path("spans.jsonl")) == ["otlp", "file"]
    assert exporter_names({"OTEL_TRACES_EXPORTER": "console"}, None) == ["console"]
    assert exporter_names({"OTEL_TRACES_EXPORTER": "none"}, Path("spans.jsonl")) == []


def test_an_unknown_exporter_or_a_file_without_a_path_is_a_clear_error() -> None:
    with pytest.raises(TracingConfigError, match=r"unknown exporter.*zipkin"):
        exporter_names({"OTEL_TRACES_EXPORTER": "zipkin"}, None)
    with pytest.raises(TracingConfigError, match=r"--trace-file"):
        exporter_names({"OTEL_TRACES_EXPORTER": "file"}, None)


def record_spans(path: Path) -> None:
    """A small topic-create-like trace across two members, written as members do."""
    for member, service in (("sc-1", "ha-sc-sc"), ("spu-5001", "ha-sc-spu")):
        provider = TracerProvider(
            resource=Resource.create({"service.name": service, "service.instance.id": member})
        )
        provider.add_span_processor(SimpleSpanProcessor(SpanFileExporter(path / f"{member}.jsonl")))
        tracer = provider.get_tracer("test")
        if member == "sc-1":
            with tracer.start_as_current_span("POST /api/v1/topics") as request:
                with tracer.start_as_current_span(
                    "kv create topics/orders", attributes={"key": "orders", "epoch": 3}
                ):
                    pass
                with tracer.start_as_current_span("kv update status topics/orders") as refused:
                    refused.set_status(Status(StatusCode.ERROR, "StaleGuard: epoch 3 < 4"))
            parent = request.get_span_context()
        else:
            from opentelemetry import trace

            context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
            with tracer.start_as_current_span(
                "spu 5001 apply delta", context=context, attributes={"spu_id": 5001}
            ):
                pass
        provider.shutdown()


def test_trace_show_prints_the_trace_as_a_tree_across_member_files(tmp_path: Path) -> None:
    record_spans(tmp_path)
    result = CliRunner().invoke(cli, ["trace", "show", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("trace ") and lines[0].endswith("4 spans")
    assert lines[1].startswith("  POST /api/v1/topics ")
    assert lines[2].startswith("    kv create topics/orders ") and "key=orders epoch=3" in lines[2]
    assert "ERROR: StaleGuard: epoch 3 < 4" in lines[3]
    assert lines[4].startswith("    spu 5001 apply delta ") and "spu-5001" in lines[4]


def test_trace_show_selects_by_id_prefix_and_slowest(tmp_path: Path) -> None:
    record_spans(tmp_path)
    (trace,) = build_traces(read_span_files([tmp_path]))
    assert select([trace], trace_id=trace.trace_id[:8], slowest=None) == [trace]
    assert select([trace], trace_id="ffffffffff", slowest=None) == []
    assert select([trace], trace_id=None, slowest=1) == [trace]
    assert len(render(trace)) == 5
    result = CliRunner().invoke(cli, ["trace", "show", str(tmp_path), "--trace-id", "fffffffff"])
    assert result.exit_code == 1 and "no trace matches" in result.output


def test_a_bad_line_is_named_and_a_line_cut_by_a_kill_is_skipped(tmp_path: Path) -> None:
    record_spans(tmp_path)
    spans = tmp_path / "sc-1.jsonl"
    with spans.open("a") as out:
        out.write('{"trace_id": "ab", "na')  # the writer died mid-line
    assert len(list(read_span_files([tmp_path]))) == 4
    spans.write_text(spans.read_text() + "\n")  # restarted, the member appends after it
    record_spans(tmp_path)
    result = CliRunner().invoke(cli, ["trace", "show", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"skipped 1 torn line(s) (a member killed mid-write): {spans}:4" in result.output
    assert result.output.count("4 spans") == 2
    spans.write_text(spans.read_text() + '{"not": "a span"}\n')
    result = CliRunner().invoke(cli, ["trace", "show", str(spans)])
    assert result.exit_code == 1
    assert f"{spans}:8: not a span record" in result.output


def test_sc_run_refuses_a_bad_exporter_or_an_unwritable_span_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = ["sc", "run", "--backend", "memory", "--data-dir", str(tmp_path / "sc")]
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    result = CliRunner().invoke(cli, run)
    assert result.exit_code == 2 and "unknown exporter(s) zipkin" in result.output
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    result = CliRunner().invoke(cli, [*run, "--trace-file", str(blocker / "sc-1.jsonl")])
    assert result.exit_code == 2 and "--trace-file" in result.output
