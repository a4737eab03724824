"""Replica placement: which SPUs hold each partition of a topic, leader first.

Follows Fluvio's scheduler: a partition's leader is the online SPU leading the
fewest partitions, each follower the online SPU holding the fewest replicas, never
the same SPU twice in one partition. Counts start from the load of the topics
already placed and grow as this topic's partitions are placed, so leaders spread
first and followers even out the replicas held. When the SPUs name racks (and the
topic does not ignore them), a follower comes from a rack the partition does not
use yet whenever one is online, as Fluvio's rack-aware placement spreads replicas
across racks. Ties go to the lowest SPU id: the same input gives the same map.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ha_sc.controllers.spus.info import SpuInfo
from ha_sc.controllers.spus.load import SpuLoad

__all__ = [
    "InsufficientSpus",
    "SpuInfo",
    "assign_replicas",
    "validate_assigned_map",
]


@dataclass(frozen=True, slots=True)
class InsufficientSpus:
    """Too few online SPUs to give every partition ``needed`` distinct replicas."""

    needed: int
    available: int
    reason: str


def assign_replicas(
    partitions: int,
    replication_factor: int,
    spus: Sequence[SpuInfo],
    *,
    existing: Mapping[int, list[int]] | None = None,
    ignore_rack: bool = False,
    load: SpuLoad | None = None,
) -> dict[int, list[int]] | InsufficientSpus:
    """Place partitions ``0..partitions-1``; partition id -> replica SPU ids, leader first.

    Partitions in ``existing`` keep their replicas as they are and place nothing.
    ``load`` is the (partitions led, replicas held) of each SPU across the topics
    already placed, existing partitions of this topic included; it is not modified.
    """
    if partitions < 1 or replication_factor < 1:
        raise ValueError(
            f"partitions ({partitions}) and replication factor ({replication_factor}) "
            "must be at least 1"
        )
    kept = existing or {}
    placed = {pid: list(kept[pid]) for pid in range(partitions) if pid in kept}
    to_place = [pid for pid in range(partitions) if pid not in placed]
    if not to_place:
        return placed
    known = {spu.id: spu for spu in sorted(spus, key=lambda spu: spu.id)}
    online = [spu for spu in known.values() if spu.online]
    if replication_factor > len(online):
        return _insufficient(replication_factor, online, known)
    placer = _Placer(online, load or {}, racks=not ignore_rack)
    for pid in to_place:
        placed[pid] = placer.place(replication_factor)
    return dict(sorted(placed.items()))


def validate_assigned_map(
    replica_map: Mapping[int, Sequence[int]], spus: Sequence[SpuInfo]
) -> str | None:
    """Why an assigned replica map cannot be used with these SPUs, or None if it can.

    Every SPU it names must be registered; whether it is online does not matter
    (a partition whose leader is offline waits for it or fails over).
    """
    known = {spu.id for spu in spus}
    unknown = sorted({spu for replicas in replica_map.values() for spu in replicas} - known)
    if not unknown:
        return None
    ids = ", ".join(str(spu) for spu in unknown)
    noun = "id" if len(unknown) == 1 else "ids"
    return f"assigned replicas name unknown spu {noun}: {ids}"


class _Placer:
    """Running leader/replica counts while one topic's partitions are placed."""

    def __init__(self, online: list[SpuInfo], load: SpuLoad, *, racks: bool) -> None:
        self._online = online
        self._led = {spu.id: load.get(spu.id, (0, 0))[0] for spu in online}
        self._held = {spu.id: load.get(spu.id, (0, 0))[1] for spu in online}
        self._racks = racks and any(spu.rack is not None for spu in online)

    def place(self, replication_factor: int) -> list[int]:
        leader = min(self._online, key=lambda spu: (self._led[spu.id], self._held[spu.id], spu.id))
        chosen = [leader]
        while len(chosen) < replication_factor:
            used_racks = {_rack(spu) for spu in chosen} if self._racks else set()
            taken = {spu.id for spu in chosen}
            follower = min(
                (spu for spu in self._online if spu.id not in taken),
                key=lambda spu: (_rack(spu) in used_racks, self._held[spu.id], spu.id),
            )
            chosen.append(follower)
        self._led[leader.id] += 1
        for spu in chosen:
            self._held[spu.id] += 1
        return [spu.id for spu in chosen]


def _rack(spu: SpuInfo) -> str | int:
    """An SPU's rack; an SPU without one counts as a rack of its own."""
    return spu.rack if spu.rack is not None else spu.id


def _insufficient(
    needed: int, online: list[SpuInfo], known: Mapping[int, SpuInfo]
) -> InsufficientSpus:
    noun = "SPU" if needed == 1 else "SPUs"
    reason = f"replication factor {needed} needs {needed} online {noun}, "
    if online:
        reason += f"{len(online)} online: " + ", ".join(str(spu.id) for spu in online)
    else:
        reason += "none online"
    offline = [spu.id for spu in known.values() if not spu.online]
    if offline:
        reason += "; offline: " + ", ".join(str(spu) for spu in offline)
    return InsufficientSpus(needed=needed, available=len(online), reason=reason)
