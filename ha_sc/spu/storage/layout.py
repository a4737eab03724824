"""Where a replica log's files are, and small file-system steps done safely.

<data_dir>/<topic>-<partition>/
    00000000000000000000.log     batches, back to back
    00000000000000000000.index   sparse offset index of that segment
    00000000000000001234.log     the next segment: its first batch's base offset
    00000000000000001234.index
    hw.checkpoint                the high watermark (JSON, replaced atomically)
    replica.lock                 flock'ed while a ReplicaLog has the directory open
"""

from __future__ import annotations

import os
from pathlib import Path

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TMP_SUFFIX = ".tmp"
CHECKPOINT_NAME = "hw.checkpoint"
LOCK_NAME = "replica.lock"
_DIGITS = 20


def replica_dir(data_dir: Path, topic: str, partition: int) -> Path:
    """The directory of one partition replica's log."""
    return data_dir / f"{topic}-{partition}"


def log_path(directory: Path, base_offset: int) -> Path:
    return directory / f"{base_offset:0{_DIGITS}d}{LOG_SUFFIX}"


def index_path(directory: Path, base_offset: int) -> Path:
    return directory / f"{base_offset:0{_DIGITS}d}{INDEX_SUFFIX}"


def segment_bases(directory: Path) -> list[int]:
    """Base offsets of the segments in ``directory``, in order."""
    bases = []
    for path in directory.glob(f"*{LOG_SUFFIX}"):
        stem = path.name.removesuffix(LOG_SUFFIX)
        if len(stem) == _DIGITS and stem.isdigit():
            bases.append(int(stem))
    return sorted(bases)


def remove_leftovers(directory: Path, bases: list[int]) -> None:
    """Delete temporary files and indexes whose segment is gone (a crash mid-delete)."""
    known = {index_path(directory, base).name for base in bases}
    for path in directory.iterdir():
        orphan_index = path.suffix == INDEX_SUFFIX and path.name not in known
        if path.suffix == TMP_SUFFIX or orphan_index:
            path.unlink()


def fsync_dir(directory: Path) -> None:
    """Make creations, renames and deletions in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` aside, fsync it, rename it over ``path``, fsync the directory."""
    aside = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, [data])
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(aside, path)
    fsync_dir(path.parent)


def write_all(fd: int, parts: list[bytes | memoryview]) -> int:
    """Write every byte of ``parts`` (one writev, more if the OS writes short)."""
    total = sum(len(part) for part in parts)
    written = os.writev(fd, parts)
    while written < total:
        rest = memoryview(b"".join(parts))[written:]
        written += os.write(fd, rest)
    return total
