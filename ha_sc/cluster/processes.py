"""Starting and stopping the members of a local cluster, by their PIDs only."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ha_sc.cluster.ports import read_ephemeral

LOWEST_FREE_PORT = 10_000
"""``free_port`` looks at or above this port (below it lie many well-known services')."""
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing is bound to now and that this process has not
    handed out before, outside the kernel's ephemeral range: a port from that range can
    be taken by any outgoing connection while the member it belongs to is down, and the
    member's restart on its recorded address then fails ("address already in use")."""
    ephemeral = read_ephemeral()
    ranges = [range(LOWEST_FREE_PORT, ephemeral.first), range(ephemeral.last + 1, 65536)]
    candidates = [r for r in ranges if len(r) >= 1000]
    for _ in range(200 if candidates else 0):
        port = random.choice(random.choice(candidates))
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as sock:  # no room outside the ephemeral range
        sock.bind((host, 0))
        chosen: int = sock.getsockname()[1]
    _handed_out.add(chosen)
    return chosen


def free_address(host: str = "127.0.0.1") -> str:
    return f"{host}:{free_port(host)}"


def is_running(pid: int | None, marker: str = "ha_sc") -> bool:
    """Whether ``pid`` is alive and is one of ours (its command line names ``marker``),
    so a PID reused by another program is never taken for a member."""
    if pid is None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and marker.encode() in cmdline


def spawn(args: list[str], log_path: Path) -> int:
    """Start a detached member process (own session), its output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return proc.pid


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def stop(pid: int | None, marker: str = "ha_sc", timeout: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``; True if it was running."""
    if not is_running(pid, marker):
        return False
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(pid, marker):
            _reap(pid)
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
