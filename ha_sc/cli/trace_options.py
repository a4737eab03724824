"""``--trace-file`` of ``sc run`` and ``spu run``, and turning tracing on before the member runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import click

from ha_sc.telemetry.tracing import TRACE_FILE_ENV, TracingConfigError, start_tracing

F = TypeVar("F", bound=Callable[..., object])


def trace_file_option(function: F) -> F:
    decorate = click.option(
        "--trace-file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar=TRACE_FILE_ENV,
        help=f"Append finished spans to this JSON-lines file (read it with `ha-sc trace "
        f"show`); env {TRACE_FILE_ENV}. Other exporters: the OTEL_* variables "
        "(OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_EXPORTER=otlp|console). Off by default.",
    )
    return decorate(function)


def start_member_tracing(
    service: str, attributes: Mapping[str, str | int], trace_file: Path | None
) -> None:
    """Tracing on for this process if asked for; a bad ``OTEL_*`` setting or a span file
    that cannot be opened is a usage error."""
    try:
        start_tracing(service, attributes, trace_file=trace_file)
    except TracingConfigError as invalid:
        raise click.UsageError(str(invalid)) from None
    except OSError as unwritable:
        raise click.BadParameter(str(unwritable), param_hint="'--trace-file'") from None
