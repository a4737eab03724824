"""The Raft port listens on the node's own address, not on every address of the host."""

from __future__ import annotations

import socket
import time

import pytest

from election.raft_node import LeaseNode
from tests.net import free_port

pytestmark = pytest.mark.raft


def _accepts(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def test_a_loopback_raft_address_is_not_reachable_on_another_local_address() -> None:
    port = free_port()
    node = LeaseNode(f"127.0.0.1:{port}", [])
    try:
        deadline = time.monotonic() + 5.0
        while not _accepts("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _accepts("127.0.0.1", port)
        assert not _accepts("127.0.0.2", port)
    finally:
        node.node.destroy_synchronous()
