"""What a replica's servers (public API, SPU server) need to know about the replica."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from election.term import Term
from ha_sc.api.addresses import ReplicaAddresses
from ha_sc.kv.api import KvStore
from ha_sc.store import GlobalStore


@dataclass(frozen=True, slots=True)
class KnownLeader:
    """The leader as this replica sees it."""

    replica_id: str
    epoch: int
    addresses: ReplicaAddresses


class RaftGroup(Protocol):
    """The Raft group of the embedded store, for growing and shrinking the replica set."""

    def members(self) -> set[str]:
        """Raft addresses of every member, as this replica knows them."""
        ...

    async def add_member(self, peer: str) -> bool:
        """Add a started replica's Raft node; False if it is a member already."""
        ...

    async def remove_member(self, address: str) -> bool:
        """Remove another member; False if it was not one."""
        ...


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

    def replica_privates(self) -> list[str]:
        """Private (SPU-facing) addresses of the replicas this one knows of, itself first."""
        ...

    def raft_group(self) -> RaftGroup | None:
        """The Raft group this replica belongs to; None on the etcd and memory backends."""
        ...

    async def step_down(self) -> None:
        """Stop leading, if it leads (the lease goes to a standby), and give up Raft
        leadership, if it has it; the replica keeps running as a standby."""
        ...
