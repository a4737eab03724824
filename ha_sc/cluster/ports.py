"""Which ports a local cluster's members listen on: one block per cluster, chosen once.

A block is ``BLOCK_SIZE`` consecutive ports from its base (default 9003, as Fluvio's
SC public port). It is cut into ``SLOTS`` slots of ``SLOT_WIDTH`` ports; slot ``k``
holds SC replica ``sc-(k+1)`` and SPU ``5001+k``::

    base + 10k + 0   SC public API        (9003 for sc-1, as Fluvio)
    base + 10k + 1   SC private (SPUs)    (9004)
    base + 10k + 2   SPU public           (9005 for SPU 5001, as Fluvio)
    base + 10k + 3   SPU private          (9006)
    base + 10k + 4   SC Raft              (9007)
    base + 5, + 6    etcd client, peer    (slot 0 only, when the launcher runs etcd)
    base + 10k + 7   SPU metrics          (9010 for SPU 5001; an SC's are on its public port)

A member's ports follow its name, and replica names are never reused (SPU ids
neither), so neither are ports. A block never reaches
into the kernel's ephemeral range, where any outgoing connection may take a port.
Every function here is pure: the machine is read at the edges (``read_ephemeral``,
the registry, the port probe).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

DEFAULT_BASE = 9003
SLOT_WIDTH = 10
SLOTS = 50
BLOCK_SIZE = SLOT_WIDTH * SLOTS
LOWEST_PORT = 1024
HIGHEST_PORT = 65535
EPHEMERAL_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
EPHEMERAL_FALLBACK = (32768, 60999)
"""Linux's default range, used when the kernel's cannot be read."""


class Offset(IntEnum):
    SC_PUBLIC = 0
    SC_PRIVATE = 1
    SPU_PUBLIC = 2
    SPU_PRIVATE = 3
    RAFT = 4
    ETCD_CLIENT = 5
    ETCD_PEER = 6
    SPU_METRICS = 7


@dataclass(frozen=True)
class PortRange:
    first: int
    last: int
    """Inclusive."""

    def overlaps(self, other: PortRange) -> bool:
        return self.first <= other.last and other.first <= self.last

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.first <= port <= self.last

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


class BadBlock(ValueError):
    """A port block that cannot be used; the message says why."""


def parse_ephemeral(text: str) -> PortRange:
    """``ip_local_port_range``'s two numbers; raises ValueError."""
    low, high = (int(part) for part in text.split())
    if not LOWEST_PORT <= low <= high <= HIGHEST_PORT:
        raise ValueError(f"not a port range: {text!r}")
    return PortRange(low, high)


def read_ephemeral(path: Path = EPHEMERAL_FILE) -> PortRange:
    """The kernel's ephemeral port range, or Linux's default when unreadable."""
    try:
        return parse_ephemeral(path.read_text())
    except (OSError, ValueError):
        return PortRange(*EPHEMERAL_FALLBACK)


def block(base: int) -> PortRange:
    return PortRange(base, base + BLOCK_SIZE - 1)


def check_base(base: int, ephemeral: PortRange) -> None:
    """Raises BadBlock when the block at ``base`` leaves the usable ports or touches
    the ephemeral range."""
    ports = block(base)
    if ports.first < LOWEST_PORT or ports.last > HIGHEST_PORT:
        raise BadBlock(
            f"--base-port {base}: the block {ports} ({BLOCK_SIZE} ports) must lie within "
            f"{LOWEST_PORT}-{HIGHEST_PORT}"
        )
    if ports.overlaps(ephemeral):
        raise BadBlock(
            f"--base-port {base}: the block {ports} reaches into the kernel's ephemeral port "
            f"range {ephemeral}, where outgoing connections take ports; choose a base below "
            f"{ephemeral.first - BLOCK_SIZE + 1} or above {ephemeral.last}"
        )


def candidate_bases(ephemeral: PortRange, start: int = DEFAULT_BASE) -> Iterator[int]:
    """Block bases to try in order: from ``start`` up, a block apart, skipping the
    ephemeral range."""
    base = start
    while base + BLOCK_SIZE - 1 <= HIGHEST_PORT:
        if block(base).overlaps(ephemeral):
            base = max(base + BLOCK_SIZE, ephemeral.last + 1)
            continue
        yield base
        base += BLOCK_SIZE


def choose_base(
    ephemeral: PortRange,
    claimed: Iterable[PortRange],
    is_free: Callable[[int], bool],
) -> int | None:
    """The first candidate block overlapping no ``claimed`` block whose ports
    ``is_free`` (a predicate over a base); None when there is none."""
    taken = list(claimed)
    for base in candidate_bases(ephemeral):
        if any(block(base).overlaps(other) for other in taken):
            continue
        if is_free(base):
            return base
    return None


def slot_port(base: int, slot: int, offset: Offset) -> int:
    if not 0 <= slot < SLOTS:
        raise BadBlock(f"slot {slot} is outside the block's {SLOTS} slots")
    return base + slot * SLOT_WIDTH + offset


def address(base: int, slot: int, offset: Offset, host: str = "127.0.0.1") -> str:
    return f"{host}:{slot_port(base, slot, offset)}"


def replica_slot(replica_id: str) -> int:
    """``sc-3`` -> 2. Raises BadBlock past the block's slots."""
    number = int(replica_id.removeprefix("sc-"))
    if not 1 <= number <= SLOTS:
        raise BadBlock(
            f"replica {replica_id}: a cluster's port block has room for replicas sc-1 to "
            f"sc-{SLOTS} (names are never reused)"
        )
    return number - 1


def spu_slot(spu_id: int, first_spu_id: int) -> int:
    slot = spu_id - first_spu_id
    if not 0 <= slot < SLOTS:
        raise BadBlock(f"SPU {spu_id}: a cluster's port block has room for {SLOTS} SPUs")
    return slot
