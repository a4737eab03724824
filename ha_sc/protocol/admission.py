"""How many connections a listener lets each peer hold, and when a refusal is logged.

Sans-IO, shared by every listener (the SPU's data ports, the SC's private port, the
HTTP listeners through ``connection_guard``):
``Admission`` counts the open connections per peer host and says whether one more may
stay; ``RefusalLog`` says whether a refusal of a peer is logged now, once per peer per
interval, so a flood of refusals is one line.
"""

from __future__ import annotations

import collections

from ha_sc.http_guard import ConnectionGuard, HttpLimits

REFUSAL_LOG_EVERY = 30.0
"""Seconds between two log lines about refusing the same peer."""
REFUSAL_LOG_PEERS = 4096
"""Peers whose last refusal line is remembered; the oldest is forgotten first."""


class Admission:
    """The open connections of one port, per peer address."""

    def __init__(self, max_connections: int, max_connections_per_peer: int) -> None:
        self._max = max_connections
        self._max_per_peer = max_connections_per_peer
        self._open: collections.Counter[str] = collections.Counter()
        self._total = 0

    def refusal(self, host: str) -> str | None:
        """Why one more connection from ``host`` is refused, or None (it is counted)."""
        if self._total >= self._max:
            return f"the port already has {self._total} connections (max_connections)"
        if self._open[host] >= self._max_per_peer:
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


def connection_guard(name: str, limits: HttpLimits) -> ConnectionGuard:
    """The guard of HTTP listener ``name`` (``ha_sc.http_site``): its caps counted per peer
    host, its refusals logged once per peer per interval."""
    admission = Admission(limits.max_connections, limits.max_connections_per_peer)
    return ConnectionGuard(name, limits, admission, RefusalLog())
