"""Faults that need the host's tools: packet drops with iptables, clock skew with
libfaketime. Each raises ``Unavailable`` with the reason where the tool is missing,
and the scenario is skipped with that reason printed."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from chaos.cluster.member import Member
from chaos.faults.base import Unavailable

FAKETIME_LIBRARIES = (
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
    Path("/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"),
    Path("/usr/lib/faketime/libfaketime.so.1"),
)


def iptables() -> str:
    """The iptables binary; Unavailable if it is missing or we are not root."""
    binary = shutil.which("iptables")
    if binary is None:
        raise Unavailable("iptables is not installed on this machine")
    if os.geteuid() != 0:
        raise Unavailable("iptables needs root")
    return binary


def libfaketime() -> Path:
    """The libfaketime library; Unavailable if missing, or if this Python cannot sleep
    under it (some builds fail clock_nanosleep with EINVAL)."""
    library = next((path for path in FAKETIME_LIBRARIES if path.exists()), None)
    if library is None:
        raise Unavailable("libfaketime is not installed on this machine (apt package faketime)")
    probe = subprocess.run(
        [sys.executable, "-c", "import time; time.sleep(0.01)"],
        env={**os.environ, **faketime_env(library, 1.0)},
        capture_output=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        raise Unavailable(f"libfaketime breaks this Python's sleep: {probe.stderr[-200:]!r}")
    return library


def faketime_env(library: Path, offset: float) -> dict[str, str]:
    """A process's wall clock ``offset`` s off (its monotonic clock shifted by a constant,
    which no interval sees)."""
    return {"LD_PRELOAD": str(library), "FAKETIME": f"{offset:+g}s"}


@dataclass(eq=False)
class PortDrop:
    """Every TCP packet to a loopback port dropped by the kernel (iptables INPUT)."""

    port: int
    label: str = ""
    name: str = "iptables-drop"

    def __post_init__(self) -> None:
        self._binary = iptables()

    @property
    def target(self) -> str:
        return self.label or f"port {self.port}"

    def _rule(self, action: str) -> list[str]:
        return [
            self._binary,
            action,
            "INPUT",
            "-i",
            "lo",
            "-p",
            "tcp",
            "--dport",
            str(self.port),
            "-j",
            "DROP",
        ]

    async def inject(self) -> None:
        await _run(self._rule("-I"))

    async def heal(self) -> None:
        await _run(self._rule("-D"), check=False)


@dataclass(eq=False)
class ClockSkew:
    """The member restarted with its wall clock ``offset`` seconds off (libfaketime);
    healed by restarting it with the true clock."""

    member: Member
    offset: float
    name: str = "clock-skew"

    def __post_init__(self) -> None:
        self._library = libfaketime()

    @property
    def target(self) -> str:
        return f"{self.member.name} {self.offset:+g}s"

    async def inject(self) -> None:
        await self.member.terminate()
        self.member.start(env=faketime_env(self._library, self.offset))

    async def heal(self) -> None:
        await self.member.terminate()
        self.member.start()


async def _run(command: list[str], *, check: bool = True) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    if check and process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {stderr.decode(errors='replace').strip()}")
