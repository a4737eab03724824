"""The systemd units of deploy/systemd: checked by ``systemd-analyze verify``, and each
unit's ExecStart command line, rendered with its example environment file on free
loopback ports and a temp state dir, run for real and stopped with the unit's stop signal
within its stop timeout."""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from ha_sc.cli.main import cli
from ha_sc.client import AdminClient
from ha_sc.model import CustomSpuSpec, Endpoint, SpuResolution
from ha_sc.secret_file import write_secret
from tests.etcd_certs import TestCa
from tests.net import free_port
from tests.sc_processes import Member
from tests.waiting import eventually, eventually_sync

pytestmark = pytest.mark.slow

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
INSTALLED_BINARY = "/usr/local/bin/ha-sc"
VENV_BINARY = str(Path(sys.executable).with_name("ha-sc"))
ADDRESS = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}:\d+\b")
SC_ID = "sc-1"
SPU_ID = 5001
SECRETS = "/etc/ha-sc/secrets"
"""Where the examples keep their secret files (rendered under a temp dir here)."""
ADMIN_TOKEN = "admin-token-of-the-deploy-test"


def make_secrets(root: Path) -> Path:
    """The secret files the examples name, under ``root`` (mode 0600), as an operator
    would make them; returns the directory standing for /etc/ha-sc/secrets."""
    secrets = root / "etc-secrets"
    token = "spu-5001-token-of-the-deploy-test"
    write_secret(secrets / "raft.secret", "raft-secret-of-the-deploy-test")
    write_secret(secrets / "spu-tokens", f"{SPU_ID} {token}")
    write_secret(secrets / f"spu-{SPU_ID}.token", token)
    write_secret(secrets / "api-tokens", f"admin {ADMIN_TOKEN}")
    return secrets


def unit_settings(unit: Path) -> dict[str, str]:
    """The unit's ``Key=value`` lines (the last one wins, as in systemd)."""
    settings: dict[str, str] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings[key.strip()] = value.strip()
    return settings


def env_file(path: Path) -> dict[str, str]:
    """An EnvironmentFile's assignments (comments skipped, quotes removed)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = shlex.split(value)[0] if value.strip() else ""
    return values


def on_loopback(value: str, ports: dict[str, str]) -> str:
    """``value`` with every host:port moved to a free loopback port (one per address)."""

    def moved(match: re.Match[str]) -> str:
        return ports.setdefault(match.group(0), f"127.0.0.1:{free_port()}")

    return ADDRESS.sub(moved, value)


def exec_start(unit: Path, instance: str, env: dict[str, str], state_root: Path) -> list[str]:
    """ExecStart as systemd would run it: %i, $VAR (split on whitespace), and the
    installed binary, /var/lib and the secrets replaced by the virtualenv's, ``state_root``
    and secret files made under it."""
    line = unit_settings(unit)["ExecStart"].replace("%i", instance)
    line = line.replace(INSTALLED_BINARY, VENV_BINARY).replace("/var/lib", str(state_root))
    secrets = str(make_secrets(state_root))
    argv: list[str] = []
    for word in shlex.split(line):
        if word.startswith("$"):
            argv.extend(env[word.lstrip("$").strip("{}")].replace(SECRETS, secrets).split())
        else:
            argv.append(word)
    return argv


def stop_within(member: Member, unit: Path) -> int:
    """Send the unit's KillSignal and wait its TimeoutStopSec for the exit; the code."""
    settings = unit_settings(unit)
    timeout = float(settings["TimeoutStopSec"].removesuffix("s"))
    assert member.proc is not None
    member.signal(signal.Signals[settings["KillSignal"]])
    try:
        return member.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        member.kill()
        raise AssertionError(f"{member.name} outlived TimeoutStopSec={timeout:g}") from None


def healthz(public: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{public}/healthz", timeout=2.0) as answer:
            status: int = answer.status
            return status
    except OSError:
        return 0


def sc_env(ports: dict[str, str], *, alone: bool = False) -> dict[str, str]:
    env = env_file(UNITS / "sc.env.example")
    args = on_loopback(env["HA_SC_SC_ARGS"], ports)
    if alone:  # a one-replica Raft group, which elects itself
        args = re.sub(r"--raft-peer \S+ ?", "", args)
    return {"HA_SC_SC_ARGS": args}


def verify(instance: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` on one instance of a template unit in its directory."""
    return subprocess.run(
        ["systemd-analyze", "verify", str(instance)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("unit", ["ha-sc-sc@.service", "ha-sc-spu@.service"])
def test_systemd_analyze_verify_accepts_the_unit(unit: str, tmp_path: Path) -> None:
    assert shutil.which("systemd-analyze"), "systemd-analyze (Debian's systemd package)"
    text = (UNITS / unit).read_text()
    (tmp_path / unit).write_text(text.replace(INSTALLED_BINARY, VENV_BINARY))
    verified = verify(tmp_path / unit.replace("@.", "@7."))
    assert verified.returncode == 0, verified.stderr
    assert unit not in verified.stderr, verified.stderr  # warnings (unknown keys...) too


def test_systemd_analyze_verify_refuses_a_missing_binary(tmp_path: Path) -> None:
    """The check above can fail: a unit naming a binary that is not there is refused."""
    unit = "ha-sc-sc@.service"
    (tmp_path / unit).write_text((UNITS / unit).read_text().replace(INSTALLED_BINARY, "/nope/x"))
    verified = verify(tmp_path / "ha-sc-sc@7.service")
    assert verified.returncode != 0


def test_sc_unit_command_serves_healthz_and_stops_on_its_signal(tmp_path: Path) -> None:
    unit = UNITS / "ha-sc-sc@.service"
    ports: dict[str, str] = {}
    command = exec_start(unit, SC_ID, sc_env(ports), tmp_path)
    public = ports["10.0.0.1:9003"]
    sc = Member(SC_ID, command, tmp_path / "sc.log")
    sc.start()
    try:
        eventually_sync(lambda: healthz(public) == 200, what=f"/healthz on {public}")
        assert (tmp_path / "ha-sc" / SC_ID).is_dir()  # its data under the state dir
        assert stop_within(sc, unit) == 0, sc.log()
    finally:
        sc.kill()


async def spu_online(public: str) -> bool:
    async with AdminClient([public], timeout=2.0, token=ADMIN_TOKEN) as client:
        spus = await client.list_spus()
    return any(s.spec.id == SPU_ID and s.status.resolution is SpuResolution.ONLINE for s in spus)


async def test_spu_unit_command_registers_and_stops_on_its_signal(tmp_path: Path) -> None:
    sc_unit, spu_unit = UNITS / "ha-sc-sc@.service", UNITS / "ha-sc-spu@.service"
    ports: dict[str, str] = {}
    sc = Member(
        SC_ID, exec_start(sc_unit, SC_ID, sc_env(ports, alone=True), tmp_path), tmp_path / "sc.log"
    )
    spu_args = env_file(UNITS / "spu.env.example")["HA_SC_SPU_ARGS"]
    # The SPU's first --sc-private is this replica's private address (10.0.0.1:9004).
    spu_env = {"HA_SC_SPU_ARGS": on_loopback(spu_args, ports)}
    spu = Member("spu", exec_start(spu_unit, str(SPU_ID), spu_env, tmp_path), tmp_path / "spu.log")
    public = ports["10.0.0.1:9003"]
    sc.start()
    spu.start()
    try:
        await eventually(lambda: healthz(public) == 200, what="the SC's /healthz")
        async with AdminClient([public], timeout=5.0, token=ADMIN_TOKEN) as client:
            await client.register_spu(
                CustomSpuSpec(
                    id=SPU_ID,
                    public_endpoint=_endpoint(ports["10.0.0.4:9005"]),
                    private_endpoint=_endpoint(ports["10.0.0.4:9006"]),
                )
            )
        await eventually(lambda: spu_online(public), what=f"SPU {SPU_ID} online", timeout=60)
        assert (tmp_path / "ha-sc" / f"spu-{SPU_ID}").is_dir()
        assert await asyncio.to_thread(stop_within, spu, spu_unit) == 0, spu.log()
        assert await asyncio.to_thread(stop_within, sc, sc_unit) == 0, sc.log()
    finally:
        spu.kill()
        sc.kill()


def _endpoint(address: str) -> Endpoint:
    host, port = address.rsplit(":", 1)
    return Endpoint(host=host, port=int(port))


def args_lines(example: str, variable: str) -> list[list[str]]:
    """The arguments of every ``variable=`` line of ``example``, commented ones too."""
    return [
        shlex.split(line.lstrip("# ").split("=", 1)[1])[0].split()
        for line in (UNITS / example).read_text().splitlines()
        if line.lstrip("# ").startswith(f"{variable}=")
    ]


def test_every_args_line_of_the_examples_uses_secrets() -> None:
    """Every port of the examples authenticates: no unauthenticated Raft, SPU tokens and
    API tokens on each SC line, a token file on the SPU's."""
    sc_lines = args_lines("sc.env.example", "HA_SC_SC_ARGS")
    assert len(sc_lines) == 2
    for args in sc_lines:
        assert "--allow-unauthenticated-raft" not in args
        assert {"--spu-tokens", "--api-tokens"} <= set(args), args
        assert "--backend" in args
        if args[args.index("--backend") + 1] == "raft":
            assert "--raft-secret-file" in args, args
        for flag in ("--raft-secret-file", "--spu-tokens", "--api-tokens"):
            if flag in args:
                assert args[args.index(flag) + 1].startswith(f"{SECRETS}/"), args
    (spu_args,) = args_lines("spu.env.example", "HA_SC_SPU_ARGS")
    assert spu_args[spu_args.index("--token-file") + 1] == f"{SECRETS}/spu-{SPU_ID}.token"


def test_every_args_line_of_the_sc_example_gives_valid_settings(tmp_path: Path) -> None:
    """The raft line and the commented etcd alternative both pass ``--print-settings``
    (their secret files made as the example says, the etcd line's CA and client
    certificate made by a test CA in their place)."""
    secrets = str(make_secrets(tmp_path))
    ca = TestCa(tmp_path / "etcd")
    client = ca.issue("client")
    files = {"ca.crt": ca.cert, "client.crt": client.cert, "client.key": client.key}
    lines = args_lines("sc.env.example", "HA_SC_SC_ARGS")
    assert len(lines) == 2
    for line in lines:
        args = [arg.replace(SECRETS, secrets) for arg in line]
        args = [str(files[a.rpartition("/")[2]]) if "/etc/ha-sc/etcd/" in a else a for a in args]
        result = CliRunner().invoke(cli, ["sc", "run", "--id", SC_ID, *args, "--print-settings"])
        assert result.exit_code == 0, (line, result.output)
