"""Free loopback addresses for the members of a chaos cluster.

A member binds its address only when it starts. Until then ``Ports`` holds each
address it handed out with a bound (not listening) socket, so neither a proxy of the
same cluster nor a second pick gets that port; ``release`` lets them go just before
the members start."""

from __future__ import annotations

import socket
from collections.abc import Iterable


class Ports:
    """Free addresses, each handed out once and held until ``release``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._held: dict[str, socket.socket] = {}

    def address(self) -> str:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, 0))
        port: int = sock.getsockname()[1]
        address = f"{self._host}:{port}"
        self._held[address] = sock
        return address

    def release(self, addresses: Iterable[str] | None = None) -> None:
        """Free these held addresses (default: all) for the members that will bind them."""
        for address in list(self._held) if addresses is None else addresses:
            sock = self._held.pop(address, None)
            if sock is not None:
                sock.close()
