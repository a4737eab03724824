"""Free loopback addresses for the members and proxies of a chaos cluster."""

from __future__ import annotations

import socket


def free_address(host: str = "127.0.0.1") -> str:
    """``host:port`` where nothing listens right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return f"{host}:{port}"
