"""Loopback helpers for tests that start real servers."""

from __future__ import annotations

from ha_sc.cluster.processes import free_port as _free_port


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing is bound to now, outside the ephemeral range
    (``ha_sc.cluster.processes.free_port``): a member restarted on its port finds it free."""
    return _free_port("127.0.0.1")


def free_addresses(count: int) -> list[str]:
    return [f"127.0.0.1:{free_port()}" for _ in range(count)]
