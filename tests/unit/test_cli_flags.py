"""Flags shared by every command: durations with units, address lists split on commas,
data dirs and the cluster file locked against a second process."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ha_sc.cli.duration import Duration, parse_seconds
from ha_sc.cli.main import cli
from ha_sc.cli.output import endpoints_option
from ha_sc.filelock import Locked, acquire, release


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2", 2.0),
        ("0.5", 0.5),
        ("100ms", 0.1),
        ("2s", 2.0),
        ("1m", 60.0),
        ("1h 30m", 5400.0),
        ("7d", 604800.0),
        (" 1.5 s ", 1.5),
    ],
)
def test_durations_take_units(text: str, seconds: float) -> None:
    assert parse_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 fortnights", "-1s", "1s and 2m", "s"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_seconds(text)


def _echo(unit: str) -> click.Command:
    @click.command()
    @click.option("--wait", type=Duration(unit, minimum=0), default=5.0)
    def command(wait: float) -> None:
        click.echo(repr(wait))

    return command


@pytest.mark.parametrize(
    ("unit", "given", "value"),
    [("ms", "5", 5.0), ("ms", "2s", 2000.0), ("ms", "100ms", 100.0), ("s", "100ms", 0.1),
     ("s", "3", 3.0), ("s", "1m", 60.0)],
)  # fmt: skip
def test_a_bare_number_keeps_the_flags_own_unit(unit: str, given: str, value: float) -> None:
    result = CliRunner().invoke(_echo(unit), ["--wait", given])
    assert result.exit_code == 0, result.output
    assert float(result.output) == pytest.approx(value)


def test_a_bad_duration_is_a_usage_error() -> None:
    result = CliRunner().invoke(_echo("s"), ["--wait", "later"])
    assert result.exit_code == 2
    assert "'later' is not a duration such as 100ms, 2s" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["sc", "run"],
        ["spu", "run"],
        ["produce"],
        ["cluster", "up"],
        ["chaos", "run"],
        ["topic", "create"],
    ],
)
def test_help_shows_the_duration_form(args: list[str]) -> None:
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0
    assert "DURATION" in result.output and "100ms" in result.output


def test_sc_addresses_split_on_commas() -> None:
    @click.command()
    @endpoints_option
    def command(endpoints: tuple[str, ...]) -> None:
        click.echo(" ".join(endpoints))

    result = CliRunner().invoke(command, ["--sc", "a:1, b:2", "--sc", "c:3,"])
    assert result.output.split() == ["a:1", "b:2", "c:3"]


def test_spu_run_names_its_sc_flag_apart_from_the_client_verbs() -> None:
    result = CliRunner().invoke(cli, ["spu", "run", "--help"])
    assert "--sc-private" in result.output
    assert "\n  --sc " not in result.output  # the old name is hidden
    missing = CliRunner().invoke(cli, ["spu", "run", "--id", "5001"])
    assert missing.exit_code == 2 and "--sc-private" in missing.output


def test_a_lock_names_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    fd = acquire(path, wait=False)
    try:
        with pytest.raises(Locked) as refused:
            acquire(path, wait=False)  # another open file description: refused
        assert refused.value.holder == os.getpid()
    finally:
        release(fd)
    release(acquire(path, wait=False))  # free again once released


@pytest.mark.parametrize(
    ("flag", "content", "mode", "says"),
    [
        ("--raft-secret-file", "x" * 32, 0o644, "other users may read it"),
        ("--spu-tokens", "5001", 0o600, "expected '<spu id> <token>'"),
        ("--api-tokens", "root " + "x" * 32, 0o600, "expected '<read|admin> <token>'"),
    ],
)
def test_sc_run_refuses_an_unusable_secret_file_before_starting(
    tmp_path: Path, flag: str, content: str, mode: int, says: str
) -> None:
    path = tmp_path / "secret"
    path.write_text(content)
    path.chmod(mode)
    result = CliRunner().invoke(
        cli,
        ["sc", "run", "--backend", "memory", "--data-dir", str(tmp_path / "d"), flag, str(path)],
    )
    assert result.exit_code == 2 and f"Invalid value for '{flag}'" in result.output
    assert says in result.output and "x" * 32 not in result.output


def test_version_names_the_installed_package() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"ha-sc, version {version('ha-sc')}"
