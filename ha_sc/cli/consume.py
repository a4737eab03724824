"""``ha-sc consume TOPIC``: print a topic's records, from where Fluvio's flags say."""

from __future__ import annotations

import sys

import click

from ha_sc.cli.output import endpoints_option
from ha_sc.cli.record_output import CONSUME_FORMATS, formatter, render
from ha_sc.cli.stream_session import run_stream
from ha_sc.client.offsets import Offset
from ha_sc.client.stream_client import StreamClient
from ha_sc.client.stream_settings import ConsumerSettings
from ha_sc.protocol.data import Isolation


def start_offset(
    *, beginning: bool, offset: int | None, head: int | None, tail: int | None
) -> Offset:
    """Where to start from the flags (at most one given; none: only new records)."""
    given = [flag for flag, value in (("-B", beginning), ("-o", offset), ("-H", head),
                                       ("-T", tail)) if value not in (None, False)]  # fmt: skip
    if len(given) > 1:
        raise click.UsageError(f"{' and '.join(given)} exclude each other")
    if beginning:
        return Offset.beginning()
    if head is not None:
        return Offset.beginning(head)
    if tail is not None:
        return Offset.end(tail)
    if offset is not None:
        return Offset.absolute(offset) if offset >= 0 else Offset.end(-offset)
    return Offset.end()


@click.command("consume")
@click.argument("topic")
@click.option(
    "-p", "--partition", type=click.IntRange(min=0), help="Only this partition (default: all)."
)
@click.option("-B", "--beginning", is_flag=True, help="From the first record kept.")
@click.option(
    "-o",
    "--offset",
    type=int,
    help="From this offset; a negative one counts back from the end.",
)
@click.option("-H", "--head", type=click.IntRange(min=0), metavar="N", help="From record N.")
@click.option(
    "-T", "--tail", type=click.IntRange(min=0), metavar="N", help="The last N records, then on."
)
@click.option(
    "-d",
    "--disable-continuous",
    is_flag=True,
    help="Stop at the end (the offsets at the start) instead of waiting for more.",
)
@click.option("--key-value", is_flag=True, help="Print each record as [key] value.")
@click.option(
    "-O",
    "--output",
    type=click.Choice(CONSUME_FORMATS),
    default="text",
    show_default=True,
    help="text: one value per line; json: partition, offset, key, value, timestamp.",
)
@click.option(
    "--isolation",
    type=click.Choice([i.value for i in Isolation]),
    default=Isolation.COMMITTED.value,
    show_default=True,
    help="committed: only records every in-sync replica has; uncommitted: up to the "
    "leader's log end.",
)
@endpoints_option
def consume(
    topic: str,
    partition: int | None,
    beginning: bool,
    offset: int | None,
    head: int | None,
    tail: int | None,
    disable_continuous: bool,
    key_value: bool,
    output: str,
    isolation: str,
    endpoints: tuple[str, ...],
) -> None:
    """Print the records of TOPIC (every partition unless -p), one per line.

    Starts at the end (new records only) unless -B, -o, -H or -T says otherwise; runs
    until Ctrl-C, or with -d until the end it found at the start."""
    start = start_offset(beginning=beginning, offset=offset, head=head, tail=tail)
    line = formatter(output, key_value=key_value)
    settings = ConsumerSettings(isolation=Isolation(isolation))

    async def action(client: StreamClient) -> None:
        stream = client.consumer(topic, settings).stream(
            start, partition=partition, stop_at_end=disable_continuous
        )
        out = sys.stdout.buffer
        async with stream:
            async for records in stream.batches():
                out.write(render(records, line))
                out.flush()

    run_stream(endpoints, action)
