"""The Raft port listens on the node's own address, not on every address of the host."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from election.raft_node import LeaseNode
from tests.net import free_port
from tests.waiting import eventually_sync

pytestmark = pytest.mark.raft


def _accepts(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def test_a_loopback_raft_address_is_not_reachable_on_another_local_address() -> None:
    port = free_port()
    node = LeaseNode(f"127.0.0.1:{port}", [])
    try:
        eventually_sync(
            lambda: _accepts("127.0.0.1", port), timeout=5.0, interval=0.05, what="raft listening"
        )
        assert not _accepts("127.0.0.2", port)
    finally:
        node.node.destroy_synchronous()


def _non_loopback_address() -> str:
    """An address of this host that is not loopback (the route to a TEST-NET address;
    connecting a UDP socket sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("192.0.2.1", 9))
        host: str = sock.getsockname()[0]
    assert not host.startswith("127."), "this test needs a host with a non-loopback address"
    return host


def _sc_run(tmp_path: Path, raft_address: str, *flags: str) -> subprocess.Popen[str]:
    args = [
        sys.executable, "-m", "ha_sc.cli", "sc", "run",
        "--id", "sc-1",
        "--backend", "raft",
        "--data-dir", str(tmp_path / "sc-1"),
        "--raft-address", raft_address,
        "--public-address", f"127.0.0.1:{free_port()}",
        "--private-address", f"127.0.0.1:{free_port()}",
        *flags,
    ]  # fmt: skip
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path
    )


def test_sc_run_refuses_a_non_loopback_raft_address_without_the_flag(tmp_path: Path) -> None:
    proc = _sc_run(tmp_path, f"{_non_loopback_address()}:{free_port()}")
    try:
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert "is not loopback" in output and "--allow-unauthenticated-raft" in output, output
    assert not (tmp_path / "sc-1" / "raft").exists()  # refused before opening anything


def _listening_hosts(port: int) -> set[str]:
    """The IPv4 addresses that listen on ``port`` here, read from /proc/net/tcp (no
    traffic is sent to a non-loopback address)."""
    hosts = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state = fields[1], fields[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
            hosts.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return hosts


def test_sc_run_with_the_flag_starts_on_a_non_loopback_raft_address_and_warns(
    tmp_path: Path,
) -> None:
    host, port = _non_loopback_address(), free_port()
    proc = _sc_run(tmp_path, f"{host}:{port}", "--allow-unauthenticated-raft")
    try:
        deadline = time.monotonic() + 30.0
        while not _listening_hosts(port) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        listening = _listening_hosts(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert listening == {host}, output  # bound to the given address only, not 0.0.0.0
    assert "not authenticated" in output and "WARNING" in output, output
