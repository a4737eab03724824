"""`cluster up` SC settings: recorded in cluster.json, passed to every replica as `sc run`
flags, kept by a re-run and replaced by what a re-run sets."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from ha_sc.cli.main import cli
from ha_sc.cluster.launcher import plan, replica_args
from ha_sc.cluster.layout import ClusterLayout, ScOptions


def plan_with(options: ScOptions | None, existing: ClusterLayout | None = None) -> ClusterLayout:
    return plan(existing, replicas=2, spus=0, backend="raft", etcd_endpoints=[], sc_options=options)


def test_sc_options_are_recorded_and_given_to_every_replica(tmp_path: Path) -> None:
    options = ScOptions(
        config="/etc/ha-sc/sc.toml",
        tuning={"spu_link": {"hold": 0.75}, "write_window": {"limit": 32}},
        max_partitions_per_topic=8,
    )
    layout = plan_with(options)
    assert ClusterLayout.model_validate_json(layout.model_dump_json()).sc_options == options
    for replica in layout.replicas:
        args = replica_args(layout, replica, tmp_path)
        at = args.index("--config")
        assert args[at : at + 8] == [
            "--config", "/etc/ha-sc/sc.toml",
            "--spu-link-hold", "0.75",
            "--write-window-limit", "32",
            "--max-partitions-per-topic", "8",
        ]  # fmt: skip
        assert "--max-partitions-in-cluster" not in args


def test_a_re_run_keeps_the_recorded_options_and_replaces_what_it_sets() -> None:
    made = plan_with(ScOptions(config="/a.toml", tuning={"spu_link": {"hold": 0.75}}))
    kept = plan_with(None, made)
    assert kept.sc_options == made.sc_options
    changed = plan_with(
        ScOptions(tuning={"spu_link": {"keepalive_interval": 0.25}}, max_partitions_in_cluster=9),
        made,
    )
    assert changed.sc_options == ScOptions(
        config="/a.toml",
        tuning={"spu_link": {"hold": 0.75, "keepalive_interval": 0.25}},
        max_partitions_in_cluster=9,
    )


def test_a_cluster_file_from_before_sc_options_loads_with_none() -> None:
    layout = ClusterLayout.model_validate_json('{"backend": "raft", "replicas": []}')
    assert layout.sc_options == ScOptions() and layout.sc_options.flags() == []


def test_the_flags_given_to_replicas_are_flags_sc_run_takes(tmp_path: Path) -> None:
    config = tmp_path / "sc.toml"
    config.write_text("[pacing]\npace = 3\n")
    options = ScOptions(
        config=str(config),
        tuning={"spu_link": {"hold": 0.75}, "write_window": {"limit": 32}},
        max_partitions_per_topic=8,
        max_partitions_in_cluster=20,
    )
    result = CliRunner().invoke(
        cli, ["sc", "run", "--backend", "memory", *options.flags(), "--print-settings"]
    )
    assert result.exit_code == 0, result.output
    assert "hold = 0.75" in result.output and "pace = 3" in result.output
