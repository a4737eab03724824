"""Exclusive locks on lock files (flock), naming the PID that holds them.

The lock lives as long as the open file: a process that dies, even by SIGKILL,
releases it. The holder writes its PID into the file so a refused process can say
who has it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path


class Locked(Exception):
    """Another process holds the lock."""

    def __init__(self, path: Path, holder: int | None) -> None:
        self.path = path
        self.holder = holder
        who = f"process {holder}" if holder is not None else "another process"
        super().__init__(f"{path} is locked by {who}")


def _holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def acquire(path: Path, *, wait: bool, waiting: Callable[[int | None], None] | None = None) -> int:
    """Lock ``path`` (created if missing) and write our PID in it; returns the open fd,
    which holds the lock until closed. Without ``wait``, raises Locked at once when
    another process holds it; with it, calls ``waiting(holder)`` once, then blocks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise Locked(path, _holder(fd)) from None
            if waiting is not None:
                waiting(_holder(fd))
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def release(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)


@contextlib.contextmanager
def held(
    path: Path, *, wait: bool = True, waiting: Callable[[int | None], None] | None = None
) -> Iterator[None]:
    fd = acquire(path, wait=wait, waiting=waiting)
    try:
        yield
    finally:
        release(fd)
