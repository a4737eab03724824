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

from pathlib import Path

from ha_sc.durable import TMP_SUFFIX

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
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
