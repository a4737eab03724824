"""What one peer may hold of an SC replica's listeners: a group of the settings tree
(``ha_sc.sc.tuning.ScTuning``), settable as ``ha-sc sc run --listeners-<field>``.

The private port also closes a connection that sends no register message within
``spu_link.health_timeout``, and its frames are at most 16 MiB
(``ha_sc.protocol.framing.MAX_FRAME_SIZE``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ha_sc.http_guard import HttpLimits


class ListenerLimits(BaseModel):
    """Bounds on what clients and SPUs may make this replica hold."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    api_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest request body the public API reads (bytes); a larger one is answered 413
    without being read: 1 MiB is far above any topic or SPU document."""
    api_max_requests_per_peer: int = Field(default=256, ge=1)
    """Requests one client host may have open on the public API, watch streams
    included; the next is answered 429."""
    api_max_connections: int = Field(default=4096, ge=1)
    """Open connections on the public API; the next one is closed at once."""
    api_max_connections_per_peer: int = Field(default=256, ge=1)
    """Open connections on the public API from one host."""
    api_header_timeout: float = Field(default=10.0, gt=0)
    """Seconds a new public-API connection has to send its first request's headers
    whole; past it the connection is closed."""
    api_body_timeout: float = Field(default=30.0, gt=0)
    """Seconds a public-API request has to send its whole body once its headers came;
    past it the answer is 408 and the connection is closed."""
    api_idle_timeout: float = Field(default=60.0, gt=0)
    """Seconds a public-API connection may wait for its next request (or for that
    request's headers); past it the connection is closed."""
    spu_max_connections: int = Field(default=1024, ge=1)
    """Open connections on the private (SPU) port; the next one is closed at once."""
    spu_max_connections_per_peer: int = Field(default=16, ge=1)
    """Open connections on the private port from one host: an SPU holds one link and,
    while it looks for the leader, a watch; several SPUs may share a host."""

    def api_connections(self) -> HttpLimits:
        """The public API's connection limits."""
        return HttpLimits(
            max_connections=self.api_max_connections,
            max_connections_per_peer=self.api_max_connections_per_peer,
            header_timeout=self.api_header_timeout,
            idle_timeout=self.api_idle_timeout,
        )
