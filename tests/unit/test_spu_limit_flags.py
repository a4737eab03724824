"""``ha-sc spu run``'s data-port limit flags reach the SPU's settings, and a bad one is
a usage error naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ha_sc.cli import spu_run as spu_run_module
from ha_sc.cli.main import cli
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from ha_sc.spu.settings import SpuSettings


class NodeThatRecords:
    """Stands in for SpuNode: keeps the settings it was given, runs nothing."""

    seen: list[SpuSettings] = []

    def __init__(self, settings: SpuSettings) -> None:
        self.seen.append(settings)

    async def run(self) -> int:
        return 0


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[SpuSettings]:
    NodeThatRecords.seen = []
    monkeypatch.setattr(spu_run_module, "SpuNode", NodeThatRecords)
    return NodeThatRecords.seen


def spu_run(tmp_path: Path, *flags: str) -> list[str]:
    return [
        "spu", "run", "--id", "5001", "--sc-private", "127.0.0.1:1",
        "--data-dir", str(tmp_path / "spu"), *flags,
    ]  # fmt: skip


def test_the_limit_flags_set_the_data_plane(tmp_path: Path, recorded: list[SpuSettings]) -> None:
    flags = ["--max-connections", "10", "--max-connections-per-peer", "2"]
    flags += ["--frame-timeout", "500ms", "--max-fetch-bytes", "65536", "--max-wait-ms", "1000"]
    flags += ["--max-in-flight", "8", "--private-max-in-flight", "100"]
    result = CliRunner().invoke(cli, spu_run(tmp_path, *flags))
    assert result.exit_code == 0, result.output
    data = recorded[0].dataplane
    assert (data.max_connections, data.max_connections_per_peer, data.frame_timeout) == (
        10, 2, 0.5,
    )  # fmt: skip
    assert (data.max_fetch_bytes, data.max_wait_ms) == (65536, 1000)
    assert (data.max_in_flight, data.private_max_in_flight) == (8, 100)


def test_the_defaults_are_the_settings_defaults(
    tmp_path: Path, recorded: list[SpuSettings]
) -> None:
    result = CliRunner().invoke(cli, spu_run(tmp_path))
    assert result.exit_code == 0, result.output
    assert recorded[0].dataplane == DataPlaneSettings()


def test_a_zero_limit_is_a_usage_error(tmp_path: Path, recorded: list[SpuSettings]) -> None:
    result = CliRunner().invoke(cli, spu_run(tmp_path, "--max-connections-per-peer", "0"))
    assert result.exit_code == 2
    assert "--max-connections-per-peer" in result.output
    assert recorded == []
