"""Settings of one SPU's data plane (``ha-sc spu run`` flags)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ha_sc.spu.storage import FsyncPolicy


class DataPlaneSettings(BaseModel):
    """How the SPU stores, serves and replicates its partitions."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    fsync: FsyncPolicy = FsyncPolicy.ALWAYS
    """When appends reach the disk (docs/storage.md); every append group is fsynced once
    under ``always``."""
    lag_time: float = Field(default=10.0, gt=0)
    """Seconds a follower may go without holding everything the leader has before it
    leaves the in-sync set (and stops holding the high watermark back)."""
    min_insync: int = Field(default=1, ge=1)
    """Replicas (the leader counts) that must be in sync for the high watermark to move,
    so for acks=all to be answered. 1: a leader whose followers all fell out commits alone
    (Kafka's default); 2 with three replicas: a lone leader stops committing."""
    replica_wait_ms: int = Field(default=20_000, gt=0)
    """How long a follower's session fetch waits at the leader for new records. Records
    and HW moves answer it at once, so this is only how often an idle session asks
    again: one request per leader SPU followed per this many ms, whatever the number of
    partitions."""
    replica_idle_wait_ms: int = Field(default=320_000, gt=0)
    """The longest a follower's session fetch waits when every partition in it is idle:
    each fetch that comes back with nothing new waits twice as long as the last (from
    ``replica_wait_ms``), and anything new brings it back."""
    replica_fetch_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    """The most a follower asks for per partition in one fetch (a partition behind by
    more than that catches up in 8 MiB rounds: one fsync and one round trip each)."""
    producer_tail_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    """Bytes of a log's tail whose batch headers rebuild the producers' sequences on open."""
    io_threads: int = Field(default=4, ge=1)
    """Threads that run the logs' file I/O off the event loop."""
    retention_interval: float = Field(default=10.0, gt=0)
    """Seconds between two passes of retention over the hosted replicas (deleting the
    closed segments their topic's retention time or size lets go)."""
    max_in_flight: int = Field(default=256, ge=1)
    """Requests one client connection may have unanswered; reading waits beyond it."""
    private_max_in_flight: int = Field(default=65_536, ge=1)
    """Requests one follower connection may have unanswered on the private port (a fetch
    session has at most two in flight; a follower of an older version sends one waiting
    ``replica_fetch`` per partition it follows here, on one connection)."""
    max_connections: int = Field(default=4096, ge=1)
    """Open connections on each data port; the next one is closed at once."""
    max_connections_per_peer: int = Field(default=256, ge=1)
    """Open connections on each data port from one peer host."""
    frame_timeout: float = Field(default=30.0, gt=0)
    """Seconds a connection may take to send its first whole frame, or to finish a frame
    it started, or to read answers waiting to be sent; past that it is closed."""
    max_fetch_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    """Bytes answered to one fetch or replica fetch at most, whatever it asks for."""
    max_wait_ms: int = Field(default=600_000, gt=0)
    """The longest a fetch or replica fetch waits for records, whatever it asks for
    (above replica_idle_wait_ms, so followers' own fetches are not cut short)."""
