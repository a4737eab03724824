"""Tracing set-up for one process (an SC replica or an SPU), from the ``OTEL_*`` variables.

Off unless an exporter is asked for: ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``,
``file``, comma separated; ``none`` turns everything off), an OTLP endpoint
(``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), or a span
file (``--trace-file`` or ``HA_SC_TRACE_FILE``). Off, the OpenTelemetry API's no-op
tracer answers every span for next to nothing. On, spans go through a
``BatchSpanProcessor``: ending a span only queues it, the export runs on the
processor's own thread, so neither the event loop nor the election thread waits.
The sampler is the SDK's (``OTEL_TRACES_SAMPLER``, ``OTEL_TRACES_SAMPLER_ARG``);
the service name ``ha-sc-sc`` or ``ha-sc-spu`` unless ``OTEL_SERVICE_NAME`` says
otherwise; ``OTEL_RESOURCE_ATTRIBUTES`` are added to the member's own.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

from ha_sc.telemetry.tracing_file import SpanFileExporter

log = logging.getLogger(__name__)

SC_SERVICE = "ha-sc-sc"
SPU_SERVICE = "ha-sc-spu"
TRACE_FILE_ENV = "HA_SC_TRACE_FILE"
EXPORT_DELAY_MS = 500
"""How long a finished span may wait in the batch queue (``OTEL_BSP_SCHEDULE_DELAY``
overrides): short, so a member killed by SIGKILL loses half a second of spans at most."""


class TracingConfigError(ValueError):
    """The ``OTEL_*`` settings ask for something this process cannot do."""


def exporter_names(env: Mapping[str, str], trace_file: Path | None) -> list[str]:
    """The exporters asked for (pure): the list ``OTEL_TRACES_EXPORTER`` names, else
    ``otlp`` when an endpoint is set, plus ``file`` when a span file is."""
    named = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    named = [n for n in named if n]
    if "none" in named:
        return []
    if not named and (
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        named = ["otlp"]
    if trace_file is not None and "file" not in named:
        named.append("file")
    unknown = sorted(set(named) - {"otlp", "console", "file"})
    if unknown:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER: unknown exporter(s) {', '.join(unknown)} "
            "(known: otlp, console, file, none)"
        )
    if "file" in named and trace_file is None:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER names file but no span file is set "
            f"(--trace-file or {TRACE_FILE_ENV})"
        )
    return named


def start_tracing(
    service: str,
    attributes: Mapping[str, str | int],
    *,
    trace_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> TracerProvider | None:
    """Install this process's tracer provider; None (the no-op tracer stays) when no
    exporter is asked for. The provider is shut down (its queue flushed) at exit."""
    env = os.environ if env is None else env
    if trace_file is None and env.get(TRACE_FILE_ENV):
        trace_file = Path(env[TRACE_FILE_ENV])
    names = exporter_names(env, trace_file)
    if not names:
        return None
    own: dict[str, str | int] = dict(attributes)
    if not env.get("OTEL_SERVICE_NAME"):
        own["service.name"] = service
    provider = TracerProvider(resource=Resource.create(own))
    for name in names:
        provider.add_span_processor(
            BatchSpanProcessor(
                _exporter(name, env, trace_file),
                schedule_delay_millis=None
                if env.get("OTEL_BSP_SCHEDULE_DELAY")
                else EXPORT_DELAY_MS,
            )
        )
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)
    log.info(
        "tracing on: service %s, exporters %s",
        provider.resource.attributes.get("service.name"),
        ", ".join(f"file {trace_file}" if n == "file" else n for n in names),
    )
    return provider


def _exporter(name: str, env: Mapping[str, str], trace_file: Path | None) -> SpanExporter:
    if name == "file":
        assert trace_file is not None
        return SpanFileExporter(trace_file)
    if name == "console":
        return ConsoleSpanExporter()
    protocol = env.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    )
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter as GrpcSpanExporter,
            )
        except ImportError as exc:
            raise TracingConfigError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the package "
                "opentelemetry-exporter-otlp-proto-grpc (pip install it), or use http/protobuf"
            ) from exc
        exporter: SpanExporter = GrpcSpanExporter()
        return exporter
    if protocol != "http/protobuf":
        raise TracingConfigError(
            f"OTLP protocol {protocol!r} is not supported (http/protobuf or grpc)"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def sc_resource(replica_id: str, backend: str) -> dict[str, str | int]:
    """The resource attributes of an SC replica's spans."""
    return {
        "service.instance.id": replica_id,
        "ha_sc.role": "sc",
        "ha_sc.replica_id": replica_id,
        "ha_sc.backend": backend,
    }


def spu_resource(spu_id: int) -> dict[str, str | int]:
    """The resource attributes of an SPU's spans."""
    return {"service.instance.id": f"spu-{spu_id}", "ha_sc.role": "spu", "ha_sc.spu_id": spu_id}
