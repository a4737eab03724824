"""Whether a loopback port can be listened on, and if not, which process holds it.

The probe binds the way every listener does (SO_REUSEADDR), so a port left in
TIME_WAIT by a stopped member counts as free and one another socket is bound to
does not. The holder is found from ``/proc/net/tcp{,6}`` (the socket's inode) and
``/proc/*/fd`` (who has that inode open); a process of another user stays unnamed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
LISTEN_STATE = "0A"


def can_listen(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


@dataclass(frozen=True)
class SocketEntry:
    port: int
    state: str
    """The kernel's hex state: 0A is LISTEN."""
    inode: int


def parse_proc_net_tcp(text: str) -> list[SocketEntry]:
    """The sockets a ``/proc/net/tcp`` or ``tcp6`` table lists (header skipped)."""
    entries = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            port = int(fields[1].rsplit(":", 1)[1], 16)
            entries.append(SocketEntry(port, fields[3], int(fields[9])))
        except (IndexError, ValueError):
            continue
    return entries


@dataclass(frozen=True)
class Holder:
    pid: int | None
    command: str

    def __str__(self) -> str:
        if self.pid is None:
            return self.command
        return f"pid {self.pid} ({self.command})"


def _inodes_on(port: int) -> list[int]:
    found: list[SocketEntry] = []
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            found += [e for e in parse_proc_net_tcp((PROC / "net" / table).read_text())
                      if e.port == port and e.inode != 0]  # fmt: skip
    found.sort(key=lambda e: e.state != LISTEN_STATE)  # a listener first
    return [e.inode for e in found]


def _command(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    text = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    text = " ".join(text.split())  # one line, whatever the arguments hold
    return text if len(text) <= 120 else text[:117] + "..."


def holder(port: int) -> Holder | None:
    """Who holds ``port``, when the kernel's tables say; None when nothing is seen."""
    inodes = _inodes_on(port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        pid = int(entry.name)
                        return Holder(pid, _command(pid))
    return Holder(None, "a process this user cannot see (another user's, or the kernel's)")
