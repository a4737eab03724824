"""Free loopback addresses for the members and proxies of a chaos cluster.

Ports are drawn outside the kernel's ephemeral range (``ip_local_port_range``), where
any outgoing connection of the machine may take a port between a pick and its bind,
and each address is handed out once per cluster: no two members (nor a member and a
proxy) share a port, and a restarted member finds its own free again. A member binds
its address only when it starts; until then ``Ports`` holds each address it handed
out with a bound (not listening) socket, so no other program takes it; ``release``
lets them go just before the members start."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterable

from ha_sc.cluster.ports import HIGHEST_PORT, PortRange, read_ephemeral

LOWEST_CHAOS_PORT = 20000
"""Below this lie well-known services and the default blocks of ``ha-sc cluster up``."""
ATTEMPTS = 200


def usable_ranges(ephemeral: PortRange) -> list[PortRange]:
    """The ports a chaos cluster may draw from: outside ``ephemeral``."""
    ranges = [
        PortRange(LOWEST_CHAOS_PORT, ephemeral.first - 1),
        PortRange(max(LOWEST_CHAOS_PORT, ephemeral.last + 1), HIGHEST_PORT),
    ]
    return [r for r in ranges if r.first <= r.last]


class Ports:
    """Free addresses outside the ephemeral range, each handed out once and held
    until ``release``."""

    def __init__(self, host: str = "127.0.0.1", *, ephemeral: PortRange | None = None) -> None:
        self._host = host
        self._ranges = usable_ranges(ephemeral or read_ephemeral())
        if not self._ranges:
            raise RuntimeError("no ports outside the kernel's ephemeral range")
        self._held: dict[str, socket.socket] = {}
        self._given: set[int] = set()
        self._rng = random.Random()

    def address(self) -> str:
        for _ in range(ATTEMPTS):
            port = self._draw()
            if port in self._given:
                continue
            # no SO_REUSEADDR: on Linux two sockets that both set it may bind one port
            # while neither listens, so a hold with it would not keep out another chaos
            # cluster's allocator (a port still in TIME_WAIT is skipped instead)
            sock = socket.socket()
            try:
                sock.bind((self._host, port))
            except OSError:
                sock.close()
                continue
            address = f"{self._host}:{port}"
            self._given.add(port)
            self._held[address] = sock
            return address
        raise RuntimeError(f"no free port outside the ephemeral range after {ATTEMPTS} tries")

    def release(self, addresses: Iterable[str] | None = None) -> None:
        """Free these held addresses (default: all) for the members that will bind them."""
        for address in list(self._held) if addresses is None else addresses:
            sock = self._held.pop(address, None)
            if sock is not None:
                sock.close()

    def _draw(self) -> int:
        sizes = [r.last - r.first + 1 for r in self._ranges]
        chosen = self._rng.choices(self._ranges, weights=sizes)[0]
        return self._rng.randint(chosen.first, chosen.last)
