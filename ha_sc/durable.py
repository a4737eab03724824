"""Files that survive a power loss: written aside, flushed, renamed, directory flushed.

Every file whose loss or half-write would matter after a crash goes through here:
the SPU's logs, indexes and checkpoints, its state file, the cluster file.
"""

from __future__ import annotations

import os
from pathlib import Path

TMP_SUFFIX = ".tmp"


def fsync_dir(directory: Path) -> None:
    """Make creations, renames and deletions in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, parts: list[bytes | memoryview]) -> int:
    """Write every byte of ``parts`` (one writev, more if the OS writes short)."""
    total = sum(len(part) for part in parts)
    written = os.writev(fd, parts)
    while written < total:
        rest = memoryview(b"".join(parts))[written:]
        written += os.write(fd, rest)
    return total


def replace_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` aside, fsync it, rename it over ``path``, fsync the directory.

    A reader sees the old document or the new one, never half of one, and after
    the call returns the new one survives a crash of the machine.
    """
    aside = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, [data])
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(aside, path)
    fsync_dir(path.parent)
