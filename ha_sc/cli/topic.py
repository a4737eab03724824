"""``ha-sc topic create|list|describe|delete``, with Fluvio's flags and columns."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import click
from pydantic import ValidationError

from ha_sc.cli.duration import Duration, help_suffix, parse_seconds
from ha_sc.cli.output import (
    echo_json,
    endpoints_option,
    human_bytes,
    human_duration,
    output_option,
    render_key_values,
    render_table,
    run_admin,
)
from ha_sc.cli.partition import partitions_table
from ha_sc.client import AdminClient
from ha_sc.model.codec import format_validation_error
from ha_sc.model.kinds import Partition, Topic
from ha_sc.model.replicas import PartitionMap, TopicReplicas
from ha_sc.model.topic import TopicSpec
from ha_sc.protocol.api_wire import object_json

TOPIC_COLUMNS = ("NAME", "TYPE", "PARTITIONS", "REPLICAS", "RETENTION TIME", "STATUS", "REASON")

# parsing of flag values

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")
_BYTES = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3,
}  # fmt: skip


def parse_duration(text: str) -> int:
    """Whole seconds from ``3600``, ``90s``, ``1h 30m``, ``7 days``; raises ValueError."""
    seconds = parse_seconds(text)
    if seconds != int(seconds):
        raise ValueError(f"{text!r} is not a whole number of seconds")
    return int(seconds)


def parse_size(text: str) -> int:
    """Bytes from ``1048576``, ``500k``, ``1 MiB``, ``1.5GB``; raises ValueError."""
    match = _SIZE.fullmatch(text.strip().lower())
    if match is None or match.group(2) not in _BYTES:
        raise ValueError(f"{text!r} is not a size such as 1048576, 500k or 1 MiB")
    return int(float(match.group(1)) * _BYTES[match.group(2)])


FlagCallback = Callable[[click.Context, click.Parameter, str | None], int | None]


def _flag(parse: Callable[[str], int]) -> FlagCallback:
    """A click callback turning a flag's text into a number with ``parse``."""

    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return convert


def read_replica_assignment(path: Path) -> TopicReplicas:
    """A replica assignment file: ``[{"id": 0, "replicas": [5001, 5002]}, ...]``
    (or the same list under ``"maps"``)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}") from None
    maps = doc.get("maps") if isinstance(doc, dict) else doc
    try:
        return TopicReplicas.model_validate({"assigned": {"maps": maps}})
    except ValidationError as exc:
        raise click.BadParameter(f"{path}: {format_validation_error(exc)}") from None


# rendering


def _type_label(topic: Topic) -> str:
    return "computed" if topic.spec.replicas.computed is not None else "assigned"


def _retention(topic: Topic) -> str:
    seconds = topic.spec.retention_time_seconds
    return "-" if seconds is None else human_duration(seconds)


def topics_table(topics: Sequence[Topic]) -> str:
    """Fluvio's topic table, or its words for none."""
    if not topics:
        return "No topics found"
    rows = [
        [
            topic.key,
            _type_label(topic),
            str(topic.spec.partition_count()),
            str(topic.spec.replication_factor()),
            _retention(topic),
            topic.status.resolution.value,
            topic.status.reason,
        ]
        for topic in sorted(topics, key=lambda t: t.key)
    ]
    return render_table(TOPIC_COLUMNS, rows)


def describe_topic_text(topic: Topic, partitions: Sequence[Partition]) -> str:
    """The topic as key-values (Fluvio's describe), then its partitions."""
    spec = topic.spec
    pairs = [("Name", topic.key), ("Type", _type_label(topic))]
    computed = spec.replicas.computed
    if computed is not None:
        pairs += [
            ("Partition Count", str(computed.partitions)),
            ("Replication Factor", str(computed.replication_factor)),
            ("Ignore Rack Assignment", str(computed.ignore_rack_assignment).lower()),
        ]
    else:
        assigned = spec.replicas.assigned
        assert assigned is not None
        pairs += [
            ("Partition Count", str(len(assigned.maps))),
            ("Assigned Replicas", _assigned(assigned.maps)),
        ]
    pairs.append(("Retention Time", _retention(topic)))
    if spec.segment_size is not None:
        pairs.append(("Segment Size", human_bytes(spec.segment_size)))
    if spec.max_partition_size is not None:
        pairs.append(("Max Partition Size", human_bytes(spec.max_partition_size)))
    pairs += [("Status", topic.status.resolution.value), ("Reason", topic.status.reason)]
    return "\n".join(
        [render_key_values(pairs), " -----------------", "", partitions_table(partitions)]
    )


def _assigned(maps: Sequence[PartitionMap]) -> str:
    return ", ".join(f"{m.id}: {list(m.replicas)}" for m in maps)


# commands


@click.group()
def topic() -> None:
    """Topics: create, list, describe, delete."""


@topic.command("create")
@click.argument("name")
@click.option(
    "-p",
    "--partitions",
    type=click.IntRange(min=1),
    default=None,
    help="Number of partitions.  [default: 1]",
)
@click.option(
    "-r",
    "--replication",
    type=click.IntRange(min=1),
    default=None,
    help="Replication factor: copies of each partition.  [default: 1]",
)
@click.option(
    "--replica-assignment",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help='JSON file placing each partition by hand: [{"id": 0, "replicas": [5001, 5002]}, '
    "...]; excludes -p, -r and --ignore-rack-assignment.",
)
@click.option(
    "--ignore-rack-assignment", is_flag=True, help="Place replicas without regard to racks."
)
@click.option(
    "--retention-time",
    type=Duration(whole=True),
    help="How long data is kept. " + help_suffix(),
)
@click.option(
    "--segment-size",
    callback=_flag(parse_size),
    metavar="BYTES",
    help="Bytes per log segment, e.g. 1048576 or 1MiB.",
)
@click.option(
    "--max-partition-size",
    callback=_flag(parse_size),
    metavar="BYTES",
    help="Bytes a partition may hold before its oldest segments are dropped.",
)
@endpoints_option
@output_option
def create(
    name: str,
    partitions: int | None,
    replication: int | None,
    replica_assignment: Path | None,
    ignore_rack_assignment: bool,
    retention_time: float | None,
    segment_size: int | None,
    max_partition_size: int | None,
    endpoints: tuple[str, ...],
    output: str,
) -> None:
    """Create topic NAME and wait until it is provisioned."""
    if replica_assignment is not None:
        if partitions is not None or replication is not None or ignore_rack_assignment:
            raise click.UsageError(
                "--replica-assignment excludes -p/--partitions, -r/--replication "
                "and --ignore-rack-assignment"
            )
        replicas = read_replica_assignment(replica_assignment)
    else:
        replicas = TopicReplicas.new_computed(
            partitions or 1, replication or 1, ignore_rack_assignment=ignore_rack_assignment
        )
    try:
        spec = TopicSpec(
            replicas=replicas,
            retention_time_seconds=None if retention_time is None else int(retention_time),
            segment_size=segment_size,
            max_partition_size=max_partition_size,
        )
    except ValidationError as exc:
        raise click.UsageError(format_validation_error(exc)) from None
    created = run_admin(endpoints, lambda admin: admin.create_topic(name, spec))
    if output == "json":
        echo_json(object_json(created))
    else:
        click.echo(f'topic "{created.key}" created')


@topic.command("list")
@endpoints_option
@output_option
def list_topics(endpoints: tuple[str, ...], output: str) -> None:
    """List topics: type, partitions, replicas, retention and status."""
    topics = run_admin(endpoints, lambda admin: admin.list_topics())
    if output == "json":
        echo_json([object_json(t) for t in topics])
    else:
        click.echo(topics_table(topics))


@topic.command("describe")
@click.argument("name")
@endpoints_option
@output_option
def describe(name: str, endpoints: tuple[str, ...], output: str) -> None:
    """Show topic NAME and its partitions."""

    async def fetch(admin: AdminClient) -> tuple[Topic, list[Partition]]:
        found = await admin.describe_topic(name)
        return found, await admin.list_partitions(name)

    found, partitions = run_admin(endpoints, fetch)
    if output == "json":
        echo_json({**object_json(found), "partitions": [object_json(p) for p in partitions]})
    else:
        click.echo(describe_topic_text(found, partitions))


@topic.command("delete")
@click.argument("name")
@endpoints_option
def delete(name: str, endpoints: tuple[str, ...]) -> None:
    """Delete topic NAME and its partitions."""
    run_admin(endpoints, lambda admin: admin.delete_topic(name))
    click.echo(f'topic "{name}" deleted')
