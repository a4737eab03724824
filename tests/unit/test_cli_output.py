"""Tables, flag parsing and errors of the client commands, with no cluster."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ha_sc.cli.output import human_bytes, human_duration, render_key_values, render_table
from ha_sc.cli.partition import partition, partitions_table
from ha_sc.cli.spu_admin import spu_list, spu_register, spu_unregister, spus_table
from ha_sc.cli.topic import (
    describe_topic_text,
    parse_duration,
    parse_size,
    read_replica_assignment,
    topic,
    topics_table,
)
from ha_sc.model import (
    Endpoint,
    ObjectMeta,
    OwnerRef,
    PartitionResolution,
    PartitionSpec,
    PartitionStatus,
    ReplicaStatus,
    SpuSpec,
    SpuStatus,
    Topic,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    TopicStatus,
)
from ha_sc.model.kinds import Partition, Spu


def a_topic(name: str = "orders", *, replicas: TopicReplicas | None = None) -> Topic:
    return Topic(
        meta=ObjectMeta(key=name),
        spec=TopicSpec(
            replicas=replicas or TopicReplicas.new_computed(2, 3),
            retention_time_seconds=7 * 86400,
            segment_size=1024**2,
        ),
        status=TopicStatus(resolution=TopicResolution.PENDING, reason="waiting for live spus"),
    )


def a_partition(index: int) -> Partition:
    return Partition(
        meta=ObjectMeta(key=f"orders-{index}", owner=OwnerRef(kind="topics", key="orders")),
        spec=PartitionSpec(leader=5001, replicas=[5001, 5002, 5003]),
        status=PartitionStatus(
            resolution=PartitionResolution.ONLINE,
            leader=ReplicaStatus(spu=5001, hw=10, leo=12),
            replicas=[ReplicaStatus(spu=5002, hw=10, leo=10)],
            lsr=1,
            size=2048,
        ),
    )


def test_tables_align_columns_two_spaces_apart() -> None:
    table = render_table(("NAME", "N"), [["a", "10"], ["long-name", "2"]])
    assert table == "  NAME       N\n  a          10\n  long-name  2"


def test_key_values_align_their_keys() -> None:
    assert render_key_values([("Name", "x"), ("Reason", "")]) == " Name    :  x\n Reason  :"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (5400, "1h 30m"), (86400, "1day"), (7 * 86400, "7days")],
)
def test_human_durations(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("size", "text"), [(0, "0 B"), (512, "512 B"), (1536, "1.5 KiB"), (3 * 1024**3, "3.0 GiB")]
)
def test_human_sizes(size: int, text: str) -> None:
    assert human_bytes(size) == text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600", 3600), ("90s", 90), ("1h 30m", 5400), ("7 days", 604800), ("2w", 1209600)],
)
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1 fortnight", "1h and 2m", "-5"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("1048576", 1048576), ("500k", 500_000), ("1 MiB", 1048576), ("1.5GB", 1_500_000_000)],
)
def test_sizes_parse(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "big", "1 parsec", "-1"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


def test_the_topic_table_has_fluvios_columns() -> None:
    lines = topics_table([a_topic("zeta"), a_topic("alpha")]).splitlines()
    assert lines[0] == "  NAME   TYPE      PARTITIONS  REPLICAS  RETENTION TIME  STATUS   REASON"
    assert (
        lines[1]
        == "  alpha  computed  2           3         7days           Pending  waiting for live spus"
    )
    assert topics_table([]) == "No topics found"


def test_the_partition_table_has_fluvios_columns() -> None:
    lines = partitions_table([a_partition(1), a_partition(0)]).splitlines()
    cells = [re.split(r"\s{2,}", line.strip()) for line in lines]
    assert cells[0] == [
        "TOPIC", "PARTITION", "LEADER", "REPLICAS", "RESOLUTION", "SIZE", "HW", "LEO", "LRS",
        "FOLLOWER OFFSETS",
    ]  # fmt: skip
    assert cells[1] == [
        "orders", "0", "5001", "[5002, 5003]", "Online", "2.0 KiB", "10", "12", "1",
        "[5002(hw 10, leo 10)]",
    ]  # fmt: skip
    assert cells[2][:2] == ["orders", "1"]
    assert partitions_table([]) == "No partitions found"


def test_the_spu_table_has_fluvios_columns() -> None:
    spu = Spu(
        meta=ObjectMeta(key="spu-5001"),
        spec=SpuSpec(
            id=5001,
            public_endpoint=Endpoint(host="10.0.0.1", port=9005),
            private_endpoint=Endpoint(host="::1", port=9006),
            rack="r1",
        ),
        status=SpuStatus(),
    )
    assert spus_table([spu]).splitlines() == [
        "  ID    NAME      STATUS  TYPE    RACK  PUBLIC         PRIVATE",
        "  5001  spu-5001  Init    custom  r1    10.0.0.1:9005  [::1]:9006",
    ]
    assert spus_table([]) == "no spu"


def test_describe_shows_the_settings_then_the_partitions() -> None:
    text = describe_topic_text(a_topic(), [a_partition(0)])
    assert " Partition Count         :  2\n" in text
    assert " Replication Factor      :  3\n" in text
    assert " Ignore Rack Assignment  :  false\n" in text
    assert " Segment Size            :  1.0 MiB\n" in text
    assert " Reason                  :  waiting for live spus\n" in text
    assert "  TOPIC   PARTITION" in text
    assigned = a_topic(replicas=TopicReplicas.new_assigned({0: [5001, 5002], 1: [5002, 5001]}))
    text = describe_topic_text(assigned, [])
    assert " Assigned Replicas  :  0: [5001, 5002], 1: [5002, 5001]\n" in text
    assert text.endswith(" -----------------\n\nNo partitions found")


def test_a_replica_assignment_file(tmp_path: Path) -> None:
    path = tmp_path / "assign.json"
    path.write_text(json.dumps([{"id": 0, "replicas": [5001, 5002]}]))
    assert read_replica_assignment(path).replication_factor() == 2
    path.write_text(json.dumps({"maps": [{"id": 1, "replicas": [5001]}]}))
    with pytest.raises(click.BadParameter, match="partition ids must start at 0"):
        read_replica_assignment(path)


# commands that fail before reaching a cluster


def root() -> click.Group:
    group = click.Group("ha-sc", commands=[topic, partition])
    group.add_command(click.Group("spu", commands=[spu_list, spu_register, spu_unregister]))
    return group


@pytest.fixture
def runner(tmp_path: Path) -> CliRunner:
    return CliRunner(env={"HA_SC_ENDPOINTS": None, "HA_SC_DIR": str(tmp_path)})


def test_no_endpoints_says_how_to_point_at_a_cluster(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(root(), ["topic", "list"])
    assert result.exit_code == 1
    assert "no SC endpoints: pass --sc HOST:PORT" in result.stderr
    assert str(tmp_path / "cluster.json") in result.stderr


def test_a_bad_address_is_named(runner: CliRunner) -> None:
    result = runner.invoke(root(), ["spu", "list", "--sc", "nowhere"])
    assert result.exit_code == 1
    assert "bad SC address: 'nowhere' is not of the form HOST:PORT" in result.stderr


def test_an_unreachable_cluster_file_cluster(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_text(
        json.dumps(
            {"replicas": [{"id": "sc-1", "public": "127.0.0.1:1", "private": "x", "pid": 0}]}
        )
    )
    result = runner.invoke(root(), ["partition", "list"])
    assert result.exit_code == 1
    assert "no SC replica could be reached: http://127.0.0.1:1" in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["topic", "create", "t", "-p", "0"], "0 is not in the range x>=1"),
        (["topic", "create", "t", "--retention-time", "soon"], "is not a duration"),
        (["topic", "create", "t", "--segment-size", "big"], "is not a size"),
        (["topic", "create", "t", "--segment-size", "2k", "--max-partition-size", "1k"],
         "max_partition_size 1000 is less than segment_size 2000"),
        (["spu", "register", "--id", "1", "--public-server", "h", "--private-server", "h:2"],
         "'h' is not of the form HOST:PORT"),
        (["spu", "register", "--id", "-1", "--public-server", "h:1", "--private-server", "h:2"],
         "id: Input should be greater than or equal to 0"),
    ],
)  # fmt: skip
def test_bad_flags_are_usage_errors(runner: CliRunner, args: list[str], words: str) -> None:
    result = runner.invoke(root(), [*args, "--sc", "127.0.0.1:1"])
    assert result.exit_code == 2, result.output
    assert words in result.stderr


def test_an_assignment_excludes_computed_flags(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "assign.json"
    path.write_text("[]")
    args = ["topic", "create", "t", "--replica-assignment", str(path), "-r", "2"]
    result = runner.invoke(root(), args)
    assert result.exit_code == 2
    assert "--replica-assignment excludes" in result.stderr
