"""One member of a chaos cluster as an OS process: started, signalled and ended by its
PID only, restartable with the same command line, data and log."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

STOP_TIMEOUT = 10.0


class Member:
    """An SC replica, an SPU or an etcd member; nothing runs until ``start``."""

    def __init__(
        self, name: str, command: list[str], log_path: Path, *, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.command = command
        self.log_path = log_path
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.stopped = False
        """SIGSTOPped and not yet continued."""

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, env: dict[str, str] | None = None) -> None:
        """Start it (again: same command, same data, the log appended); ``env`` adds
        variables for this start only (a clock skew, say)."""
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, **(self.env or {}), **(env or {})}
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=environment,
                start_new_session=True,  # a Ctrl-C of the run reaches the run, not the members
            )
        self.starts += 1
        self.stopped = False

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to this member's PID (never to anything found by name)."""
        if not self.alive or self.pid is None:
            raise RuntimeError(f"{self.name} is not running")
        os.kill(self.pid, sig)
        if sig is signal.SIGSTOP:
            self.stopped = True
        elif sig is signal.SIGCONT:
            self.stopped = False

    async def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """The exit code once it has exited; None if it still runs after ``timeout``."""
        deadline = time.monotonic() + timeout
        while self._proc is not None:
            code = self._proc.poll()
            if code is not None:
                return code
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.02)
        return None

    async def kill(self) -> None:
        """SIGKILL (a stopped one too) and reap."""
        if self.alive and self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
        await self.wait_exit()
        self.stopped = False

    async def terminate(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM (SIGCONT first if stopped), then SIGKILL past ``timeout``; the exit code."""
        if not self.alive:
            return None if self._proc is None else self._proc.poll()
        if self.stopped:
            self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        code = await self.wait_exit(timeout)
        if code is None:
            await self.kill()
        return code

    def log(self, since: int = 0) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(since)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
