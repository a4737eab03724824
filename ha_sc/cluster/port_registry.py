"""The port blocks this user's local clusters hold, so two clusters never share one.

One file per block in ``$HA_SC_PORT_REGISTRY`` (default
``~/.local/state/ha-sc/port-blocks``), named by its base port and holding the
cluster directory that owns it. An entry whose directory is gone, or whose
cluster file records another base, is stale and its block free again: deleting a
cluster's directory gives its block back. Choosing and claiming happen under one
lock, so two ``cluster up`` at once in two directories get two blocks. Ports held
by anything else on the machine (another user's cluster included) are found by
probing them before a block is chosen.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from ha_sc.cluster.ports import PortRange, block, check_base, choose_base, read_ephemeral
from ha_sc.durable import replace_atomically
from ha_sc.filelock import held

ENV_REGISTRY = "HA_SC_PORT_REGISTRY"
DEFAULT_REGISTRY = "~/.local/state/ha-sc/port-blocks"
LOCK_FILE = ".lock"


def registry_dir() -> Path:
    return Path(os.environ.get(ENV_REGISTRY) or DEFAULT_REGISTRY).expanduser()


def _recorded_base(directory: Path) -> int | None:
    try:
        doc = json.loads((directory / "cluster.json").read_text())
    except (OSError, ValueError):
        return None
    base = doc.get("base_port") if isinstance(doc, dict) else None
    return base if isinstance(base, int) else None


def _live_entries(registry: Path, owner: Path) -> dict[int, Path]:
    """Base -> owning directory, stale entries dropped; ``owner``'s own are kept."""
    live: dict[int, Path] = {}
    for entry in registry.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            directory = Path(entry.read_text().strip())
        except OSError:
            continue
        base = int(entry.name)
        recorded = _recorded_base(directory)
        if directory == owner or (directory.is_dir() and recorded in (None, base)):
            live[base] = directory
        else:
            entry.unlink(missing_ok=True)
    return live


class NoBlock(Exception):
    """No port block could be claimed; the message says why."""


def claim_block(directory: Path, requested: int | None, is_free: Callable[[int], bool]) -> int:
    """The base of the block ``directory``'s cluster will use, recorded in the registry.

    ``requested`` (``--base-port``) is taken as given unless another cluster holds an
    overlapping block; otherwise the first free block from 9003 up. A directory that
    already holds a block keeps it when nothing is requested."""
    owner = directory.resolve()
    registry = registry_dir()
    registry.mkdir(parents=True, exist_ok=True)
    ephemeral = read_ephemeral()
    with held(registry / LOCK_FILE):
        live = _live_entries(registry, owner)
        mine = [base for base, where in live.items() if where == owner]
        others = {base: where for base, where in live.items() if where != owner}
        if requested is not None:
            check_base(requested, ephemeral)
            for base, where in others.items():
                if block(requested).overlaps(block(base)):
                    raise NoBlock(
                        f"--base-port {requested}: ports {block(requested)} overlap "
                        f"{block(base)}, held by the cluster in {where}"
                    )
            chosen = requested
        elif mine:
            chosen = mine[0]
        else:
            claimed: list[PortRange] = [block(base) for base in others]
            found = choose_base(ephemeral, claimed, is_free)
            if found is None:
                raise NoBlock(
                    "no free block of ports outside the ephemeral range "
                    f"{ephemeral}; pass --base-port, or delete unused cluster directories "
                    f"(registry: {registry})"
                )
            chosen = found
        for base in mine:
            if base != chosen:
                (registry / str(base)).unlink(missing_ok=True)
        replace_atomically(registry / str(chosen), f"{owner}\n".encode())
        return chosen
