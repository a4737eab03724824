"""``ha-sc partition list``: partitions with Fluvio's columns."""

from __future__ import annotations

from collections.abc import Sequence

import click

from ha_sc.cli.output import (
    echo_json,
    endpoints_option,
    human_bytes,
    output_option,
    render_table,
    run_admin,
)
from ha_sc.model.kinds import Partition
from ha_sc.model.partition import parse_partition_key
from ha_sc.protocol.api_wire import object_json

PARTITION_COLUMNS = (
    "TOPIC",
    "PARTITION",
    "LEADER",
    "REPLICAS",
    "RESOLUTION",
    "SIZE",
    "HW",
    "LEO",
    "LRS",
    "FOLLOWER OFFSETS",
)


def _row(partition: Partition) -> list[str]:
    topic, index = parse_partition_key(partition.key)
    spec, status = partition.spec, partition.status
    followers = ", ".join(str(spu) for spu in spec.followers())
    offsets = ", ".join(f"{r.spu}(hw {r.hw}, leo {r.leo})" for r in status.replicas)
    return [
        topic,
        str(index),
        str(spec.leader),
        f"[{followers}]",
        status.resolution.value,
        human_bytes(status.size),
        str(status.leader.hw),
        str(status.leader.leo),
        str(status.lsr),
        f"[{offsets}]",
    ]


def partitions_table(partitions: Sequence[Partition]) -> str:
    """Fluvio's partition table, or its words for none."""
    if not partitions:
        return "No partitions found"
    ordered = sorted(partitions, key=lambda p: parse_partition_key(p.key))
    return render_table(PARTITION_COLUMNS, [_row(p) for p in ordered])


@click.group()
def partition() -> None:
    """Partitions of the cluster's topics."""


@partition.command("list")
@click.option("--topic", default=None, help="Only this topic's partitions.")
@endpoints_option
@output_option
def list_partitions(topic: str | None, endpoints: tuple[str, ...], output: str) -> None:
    """List partitions: leader, replicas, status and offsets."""
    partitions = run_admin(endpoints, lambda admin: admin.list_partitions(topic))
    if output == "json":
        echo_json([object_json(p) for p in partitions])
    else:
        click.echo(partitions_table(partitions))
