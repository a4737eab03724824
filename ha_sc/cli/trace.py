"""``ha-sc trace show``: the span files the members write, as indented trees."""

from __future__ import annotations

from pathlib import Path

import click

from ha_sc.telemetry.tracing_file import BadSpanLine, SpanFiles
from ha_sc.telemetry.tracing_tree import build_traces, render, select


@click.group()
def trace() -> None:
    """Read the traces members wrote with --trace-file."""


@trace.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--trace-id", help="Show only this trace (a prefix of its id will do).")
@click.option(
    "--slowest", type=click.IntRange(min=1), help="Show only the N longest traces, longest first."
)
def show(files: tuple[Path, ...], trace_id: str | None, slowest: int | None) -> None:
    """Print each trace in FILES (JSON-lines span files, or directories of them: every
    member of `cluster up --trace-file DIR` writes DIR/<member>.jsonl) as a tree: each
    span with its duration, its start after the trace's, the member, key attributes."""
    spans = SpanFiles(list(files))
    try:
        traces = build_traces(spans)
    except BadSpanLine as bad:
        raise click.ClickException(str(bad)) from None
    if spans.torn:
        click.echo(
            f"skipped {len(spans.torn)} torn line(s) (a member killed mid-write): "
            + ", ".join(spans.torn[:5]),
            err=True,
        )
    shown = select(traces, trace_id=trace_id, slowest=slowest)
    if not shown:
        raise click.ClickException(
            "no trace matches" if traces else f"no spans in {', '.join(map(str, files))}"
        )
    for number, one in enumerate(shown):
        if number:
            click.echo()
        click.echo("\n".join(render(one)))
