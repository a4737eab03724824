"""Settings of one SC replica."""

from __future__ import annotations

import enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Backend(enum.StrEnum):
    RAFT = "raft"
    ETCD = "etcd"
    MEMORY = "memory"


class ScSettings(BaseModel):
    """How one SC replica is started (``ha-sc sc run`` flags)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    replica_id: str = Field(default="sc-1", min_length=1)
    """This replica's name in the election and in logs."""
    backend: Backend = Backend.RAFT
    """Where cluster objects are stored."""
    data_dir: Path = Path("~/.ha-sc/sc-1").expanduser()
    """Raft log and snapshots (raft backend)."""
    raft_address: str = "127.0.0.1:9010"
    """host:port of this replica's Raft node (raft backend)."""
    raft_peers: tuple[str, ...] = ()
    """host:port of the other replicas' Raft nodes (raft backend)."""
    etcd_endpoints: tuple[str, ...] = ("127.0.0.1:2379",)
    """etcd client endpoints (etcd backend)."""
    etcd_root: str = "/ha-sc/"
    """Key prefix under which this cluster's objects live in etcd."""
    public_address: str = "127.0.0.1:9003"
    """host:port of this replica's public API (clients, CLI)."""
    private_address: str = "127.0.0.1:9004"
    """host:port where SPUs connect to the leader."""
    status_interval: float = Field(default=5.0, gt=0)
    """Seconds between status lines on the log."""

    @model_validator(mode="after")
    def _raft_peers_distinct(self) -> ScSettings:
        if self.raft_address in self.raft_peers:
            raise ValueError(f"raft_peers must not contain this replica ({self.raft_address})")
        return self
