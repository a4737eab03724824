"""What a replica's servers (public API, SPU server) need to know about the replica."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from election.term import Term
from ha_sc.kv.api import KvStore
from ha_sc.sc.addresses import ReplicaAddresses
from ha_sc.store import GlobalStore


@dataclass(frozen=True, slots=True)
class KnownLeader:
    """The leader as this replica sees it."""

    replica_id: str
    epoch: int
    addresses: ReplicaAddresses


class ReplicaView(Protocol):
    @property
    def replica_id(self) -> str: ...

    @property
    def cache(self) -> GlobalStore:
        """The warm, read-only mirror of the store."""
        ...

    @property
    def kv(self) -> KvStore:
        """For writes, which only the leader makes, each with ``term().guard``."""
        ...

    def term(self) -> Term | None:
        """The current term while this replica leads and its duties run, else None."""
        ...

    def leader(self) -> KnownLeader | None:
        """Who leads, as last observed (this replica included)."""
        ...
