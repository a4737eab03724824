"""``host:port`` addresses as the channel and its command line carry them."""

from __future__ import annotations


def parse_address(text: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` for IPv6) into host and port; ValueError if bad."""
    host, colon, port = text.rpartition(":")
    if not colon or not host:
        raise ValueError(f"address {text!r} is not of the form host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise ValueError(f"address {text!r} does not end in a port number (0-65535)")
    if not host:
        raise ValueError(f"address {text!r} has no host")
    return host, int(port)


def format_address(host: str, port: int) -> str:
    """The ``host:port`` form of an address, bracketing an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
