"""Which partition a replica's log directory was written for, when a key is reused.

A partition's key (``orders-0``) names its log directory, but a topic deleted and
created again under the same name has partitions of the same keys that are other
partitions: the SC sends each replica spec with the partition's ``generation`` (its
create revision in the store). The directory records the generation it was written
for in a small file beside the segments; a replica added for another generation
deletes the directory first, so the new partition starts empty, also on an SPU that
was down while the old one was deleted (and so never told to delete its log).

A directory without the file (written before generations, or by a replica spec
without one) is taken as the replica's own and marked: nothing tells it apart.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from ha_sc.durable import replace_atomically

GENERATION_FILE = "partition.generation"


def recorded_generation(directory: Path) -> int | None:
    """The generation ``directory`` was written for; None if it records none (or an
    unreadable one)."""
    try:
        text = (directory / GENERATION_FILE).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    with contextlib.suppress(ValueError):
        return int(text.strip())
    return None


def written_for_another(directory: Path, generation: int | None) -> int | None:
    """The other generation ``directory`` holds the log of, if it holds one."""
    if generation is None:
        return None
    recorded = recorded_generation(directory)
    return recorded if recorded is not None and recorded != generation else None


def mark_generation(directory: Path, generation: int | None) -> None:
    """Record ``generation`` in ``directory`` (an existing one), durably, unless there."""
    if generation is not None and recorded_generation(directory) != generation:
        replace_atomically(directory / GENERATION_FILE, f"{generation}\n".encode("ascii"))
