"""``ha-sc produce TOPIC``: one record per line of stdin (or of ``-f FILE``)."""

from __future__ import annotations

import sys
from collections import deque
from pathlib import Path

import click

from ha_sc.cli.duration import Duration, help_suffix
from ha_sc.cli.output import endpoints_option
from ha_sc.cli.stream_input import MissingSeparator, read_lines, split_key
from ha_sc.cli.stream_session import run_stream
from ha_sc.client.data_errors import ProduceFailed
from ha_sc.client.producer import TopicProducer
from ha_sc.client.producer_batch import BulkAck, RecordAck
from ha_sc.client.stream_client import StreamClient
from ha_sc.client.stream_settings import ProducerSettings
from ha_sc.protocol.data import Acks

Ack = RecordAck | BulkAck
MAX_UNCHECKED = 10_000
"""Acks kept before the oldest are awaited (so memory stays bounded on long inputs)."""


class ProduceReport:
    """What was sent and what failed, said on stderr as it happens."""

    def __init__(self) -> None:
        self.failed = 0
        self.skipped = 0
        self._acks: deque[Ack] = deque()

    async def keep(self, ack: Ack) -> None:
        self._acks.append(ack)
        while len(self._acks) > MAX_UNCHECKED or (self._acks and self._acks[0].done()):
            await self._check(self._acks.popleft())

    async def finish(self) -> None:
        while self._acks:
            await self._check(self._acks.popleft())

    def skip(self, line_number: int, reason: str) -> None:
        self.skipped += 1
        click.echo(f"error: line {line_number} not sent: {reason}", err=True)

    async def _check(self, ack: Ack) -> None:
        try:
            await ack
        except ProduceFailed as exc:
            self.failed += 1
            click.echo(f"error: {exc}", err=True)


async def produce_lines(
    producer: TopicProducer,
    fd: int,
    *,
    partition: int | None,
    key: bytes | None,
    key_separator: bytes | None,
) -> ProduceReport:
    report = ProduceReport()
    line_number = 0
    async for lines in read_lines(fd):
        if key_separator is None:
            line_number += len(lines)
            await report.keep(await producer.send_many(lines, key=key, partition=partition))
            continue
        for line in lines:
            line_number += 1
            try:
                record_key, value = split_key(line, key_separator)
            except MissingSeparator as exc:
                report.skip(line_number, str(exc))
                continue
            await report.keep(await producer.send(value, key=record_key, partition=partition))
    await producer.flush()
    await report.finish()
    return report


@click.command("produce")
@click.argument("topic")
@click.option("-p", "--partition", type=click.IntRange(min=0), help="Send every record here.")
@click.option("--key", help="Key of every record.")
@click.option(
    "--key-separator",
    metavar="SEP",
    help="Each line is KEY<SEP>VALUE: the key is cut off at the first SEP.",
)
@click.option(
    "--acks",
    type=click.Choice([a.value for a in Acks]),
    default=Acks.LEADER.value,
    show_default=True,
    help="leader: acknowledged once on the leader; all: once every in-sync replica has it.",
)
@click.option(
    "-f",
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the lines from FILE instead of stdin.",
)
@click.option(
    "--linger",
    type=Duration("ms", minimum=0),
    default=5.0,
    show_default=True,
    help="How long a partly filled batch waits for more records. " + help_suffix("ms"),
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1024 * 1024,
    show_default=True,
    metavar="BYTES",
    help="Largest batch payload.",
)
@click.option(
    "--delivery-timeout",
    type=Duration(minimum=0.1),
    default=60.0,
    show_default=True,
    help="How long a batch is retried before its records count as failed. " + help_suffix(),
)
@endpoints_option
def produce(
    topic: str,
    partition: int | None,
    key: str | None,
    key_separator: str | None,
    acks: str,
    path: Path | None,
    linger: float,
    batch_size: int,
    delivery_timeout: float,
    endpoints: tuple[str, ...],
) -> None:
    """Send one record per line of stdin (or FILE) to TOPIC.

    Records go round robin over the partitions unless -p names one or they have keys
    (then by the key's hash). Exits 1 if any record was not acknowledged, naming it."""
    if key is not None and key_separator is not None:
        raise click.UsageError("--key and --key-separator exclude each other")
    if key_separator == "":
        raise click.UsageError("--key-separator must not be empty")
    settings = ProducerSettings(
        acks=Acks(acks),
        linger=linger / 1000,
        batch_bytes=batch_size,
        delivery_timeout=delivery_timeout,
    )

    async def action(client: StreamClient) -> ProduceReport:
        producer = await client.topic_producer(topic, settings)
        if partition is not None and partition >= producer.partitions:
            raise click.UsageError(
                f"topic {topic} has partitions 0..{producer.partitions - 1}, not {partition}"
            )
        async with producer:
            if path is None:
                return await _produce_fd(
                    producer, sys.stdin.fileno(), partition, key, key_separator
                )
            with path.open("rb") as source:
                return await _produce_fd(producer, source.fileno(), partition, key, key_separator)

    report = run_stream(endpoints, action)
    if report.failed or report.skipped:
        raise click.ClickException(
            f"{report.failed} send(s) failed, {report.skipped} line(s) skipped"
        )


async def _produce_fd(
    producer: TopicProducer,
    fd: int,
    partition: int | None,
    key: str | None,
    key_separator: str | None,
) -> ProduceReport:
    return await produce_lines(
        producer,
        fd,
        partition=partition,
        key=None if key is None else key.encode(),
        key_separator=None if key_separator is None else key_separator.encode(),
    )
