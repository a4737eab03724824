"""What a data port lets one peer hold: connections, time to send a frame, requests,
and what one fetch may ask for.

``PortLimits`` are one port's bounds (its connections are counted by
``ha_sc.protocol.admission``); ``capped`` lowers a fetch's ask to the ``RequestCaps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from ha_sc.protocol.data import FetchRequest, ReplicaFetchRequest, ReplicaSessionFetch

FetchOrReplicaFetch = TypeVar(
    "FetchOrReplicaFetch", FetchRequest, ReplicaFetchRequest, ReplicaSessionFetch
)


@dataclass(frozen=True)
class PortLimits:
    max_connections: int
    """Open connections on the port; the next one is closed at once."""
    max_connections_per_peer: int
    """Open connections from one peer address (its host, whatever the source port)."""
    first_frame_timeout: float
    """Seconds a connection may take to send its first whole frame, and to finish any
    frame it has started; past that it is closed."""
    max_in_flight: int
    """Requests one connection may have unanswered; reading waits beyond it (checked
    before each frame is handed on)."""
    max_answer: int
    """Bytes one answer may carry (the port's ``max_fetch_bytes``): an in-order port
    counts each unanswered fetch's ask, up to this, as held for its connection."""
    max_send_buffer: int
    """Bytes of answers waiting unread past which the connection is closed."""


@dataclass(frozen=True)
class RequestCaps:
    """What one fetch may ask for, whatever it asks."""

    max_fetch_bytes: int
    """Bytes answered to one fetch or replica fetch at most (its ``max_bytes`` is lowered)."""
    max_wait_ms: int
    """The longest a fetch or replica fetch waits for records (its ``wait_ms`` is lowered)."""


def capped(request: FetchOrReplicaFetch, caps: RequestCaps) -> FetchOrReplicaFetch:
    """``request`` with its ask lowered to ``caps`` (the same object when within them)."""
    if request.max_bytes <= caps.max_fetch_bytes and request.wait_ms <= caps.max_wait_ms:
        return request
    return request.model_copy(
        update={
            "max_bytes": min(request.max_bytes, caps.max_fetch_bytes),
            "wait_ms": min(request.wait_ms, caps.max_wait_ms),
        }
    )
