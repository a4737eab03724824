"""What a data port lets one peer hold: connections, time to send a frame, requests.

``PortLimits`` are one port's bounds; ``Admission`` counts the open connections per
peer address and says whether one more may stay; ``RefusalLog`` says whether a refusal
of a peer is logged now (once per peer per interval, so a flood of refusals is one line).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import TypeVar

from ha_sc.protocol.data import FetchRequest, ReplicaFetchRequest

FetchOrReplicaFetch = TypeVar("FetchOrReplicaFetch", FetchRequest, ReplicaFetchRequest)

REFUSAL_LOG_EVERY = 30.0
"""Seconds between two log lines about refusing the same peer."""
REFUSAL_LOG_PEERS = 4096
"""Peers whose last refusal line is remembered; the oldest is forgotten first."""


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


class Admission:
    """The open connections of one port, per peer address."""

    def __init__(self, limits: PortLimits) -> None:
        self._limits = limits
        self._open: collections.Counter[str] = collections.Counter()
        self._total = 0

    def refusal(self, host: str) -> str | None:
        """Why one more connection from ``host`` is refused, or None (it is counted)."""
        if self._total >= self._limits.max_connections:
            return f"the port already has {self._total} connections (max_connections)"
        if self._open[host] >= self._limits.max_connections_per_peer:
            return f"{host} already has {self._open[host]} connections (max_connections_per_peer)"
        self._open[host] += 1
        self._total += 1
        return None

    def closed(self, host: str) -> None:
        """A connection admitted from ``host`` ended."""
        self._total -= 1
        self._open[host] -= 1
        if self._open[host] <= 0:
            del self._open[host]

    @property
    def total(self) -> int:
        return self._total


class RefusalLog:
    """Whether to log a refusal of ``peer`` now: the first time, then once per interval."""

    def __init__(self, every: float = REFUSAL_LOG_EVERY) -> None:
        self.every = every
        self._last: collections.OrderedDict[str, float] = collections.OrderedDict()

    def due(self, peer: str, now: float) -> bool:
        last = self._last.get(peer)
        if last is not None and now - last < self.every:
            return False
        self._last[peer] = now
        self._last.move_to_end(peer)
        while len(self._last) > REFUSAL_LOG_PEERS:
            self._last.popitem(last=False)
        return True


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
