"""Running pysyncobj commands from asyncio, and a node that hosts only the lease table."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Protocol

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf
from pysyncobj.dns_resolver import globalDnsResolver
from pysyncobj.node import TCPNode

from election.raft_append import RaftSyncObj
from election.raft_lease import RaftLeases

log = logging.getLogger(__name__)

_FAIL_NAMES = {value: name for name, value in vars(FAIL_REASON).items() if not name.startswith("_")}


_NOT_APPLIED = {
    FAIL_REASON.MISSING_LEADER,
    FAIL_REASON.NOT_LEADER,
    FAIL_REASON.DISCARDED,
    FAIL_REASON.QUEUE_FULL,
}
"""pysyncobj's failures after which the command is known not to have been applied.

Not LEADER_CHANGED: a follower reports it for a command it forwarded when the leader
changes before answering, but that leader may have logged and replicated it, and the
next one commit it. Nor UNKNOWN_OUTCOME. A command that must survive those is sent
again under its client-session tag (ha_sc.kv.session_table), which makes a copy harmless.
"""


class CommandNotCommitted(Exception):
    """A Raft command failed or did not commit in time.

    ``retryable`` is True when the command is known not to have been applied, so
    sending it again cannot apply it twice; after a timeout, LEADER_CHANGED or
    UNKNOWN_OUTCOME it may have applied or still apply.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


async def submit(method: Callable[..., Any], *args: Any, timeout: float) -> Any:
    """Run a replicated command and return what its apply returned on this node."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[Any, int]] = loop.create_future()

    def resolve(result: Any, error: int) -> None:
        if not done.done():
            done.set_result((result, error))

    def on_applied(result: Any, error: int) -> None:
        with suppress(RuntimeError):  # the caller's loop is gone; nobody waits
            loop.call_soon_threadsafe(resolve, result, error)

    method(*args, callback=on_applied)
    try:
        result, error = await asyncio.wait_for(done, timeout)
    except TimeoutError:
        raise CommandNotCommitted(
            f"not committed within {timeout:.2f}s (no quorum?); it may still apply",
            retryable=False,
        ) from None
    if error != FAIL_REASON.SUCCESS:
        raise CommandNotCommitted(
            f"failed: {_FAIL_NAMES.get(error, error)}", retryable=error in _NOT_APPLIED
        )
    return result


class RaftLeaseHost(Protocol):
    """A Raft node that carries a RaftLeases consumer (an SC replica, or a LeaseNode)."""

    leases: RaftLeases
    address: str

    def is_raft_leader(self) -> bool: ...

    def raft_leader(self) -> str | None:
        """The address of the Raft leader this node knows of."""
        ...

    def is_connected(self, raft_address: str) -> bool: ...

    async def submit_lease(self, method: Callable[..., Any], *args: Any, timeout: float) -> Any:
        """Run a RaftLeases command; raises CommandNotCommitted."""
        ...


def raft_conf(self_address: str, **overrides: Any) -> SyncObjConf:
    """pysyncobj settings for elections on a local network (overridable).

    The Raft port listens on ``self_address`` only: left alone, pysyncobj binds
    0.0.0.0 whatever the node's address, and it unpickles what arrives there.
    """
    settings: dict[str, Any] = {
        "bindAddress": self_address,
        "appendEntriesPeriod": 0.005,
        "autoTickPeriod": 0.005,
        "raftMinTimeout": 0.15,
        "raftMaxTimeout": 0.35,
        "connectionTimeout": 1.0,
        "connectionRetryTime": 0.3,
        # Snapshots are written by a forked child, as pysyncobj does by default: written
        # in-process, pickling and compressing 100k objects stalls the Raft thread for
        # seconds (no heartbeats, no commits). The fork happens on the Raft thread
        # between two applies; the child only pickles plain data already gathered,
        # writes one file and leaves with os._exit, taking no lock another thread
        # could have held at the fork.
        "useFork": True,
        "dynamicMembershipChange": True,
    }
    settings.update(overrides)
    return SyncObjConf(**settings)


def is_loopback_address(address: str) -> bool:
    """Whether the host of ``host:port`` is a loopback address (every address a
    name resolves to must be: ``localhost`` is, a host name of the machine is not)."""
    host = address.rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(resolved) and all(ipaddress.ip_address(ip).is_loopback for ip in resolved)


def is_connected(node: SyncObj, raft_address: str) -> bool:
    """Whether ``node`` currently has a live connection to the peer at ``raft_address``."""
    if raft_address == str(node.selfNode):
        return True
    status = node.getStatus()
    return bool(status.get(f"partner_node_status_server_{raft_address}", 0) == 2)


class DialNode(TCPNode):  # type: ignore[misc]
    """A peer known by its own address but reached at another (through a proxy)."""

    def __init__(self, address: str, dial: str) -> None:
        super().__init__(address)
        host, port = dial.rsplit(":", 1)
        self._dial_host = host
        self._dial_port = int(port)

    @property
    def ip(self) -> str:
        return str(globalDnsResolver().resolve(self._dial_host))

    @property
    def port(self) -> int:
        return self._dial_port


def peer_node(spec: str) -> TCPNode:
    """``host:port``, or ``host:port@dialhost:dialport`` for a peer reached through a proxy."""
    address, _, dial = spec.partition("@")
    return DialNode(address, dial) if dial else TCPNode(address)


class LeaseNode:
    """A Raft node that replicates only the lease table (elections without an SC)."""

    def __init__(self, address: str, partners: list[str], journal: str | None = None) -> None:
        self.address = address
        self.leases = RaftLeases()
        conf = raft_conf(address, journalFile=journal)
        self.node = RaftSyncObj(
            address, [peer_node(p) for p in partners], conf=conf, consumers=[self.leases]
        )

    def is_raft_leader(self) -> bool:
        return bool(self.node._isLeader())

    def raft_leader(self) -> str | None:
        leader = self.node._getLeader()
        return None if leader is None else str(leader)

    def is_connected(self, raft_address: str) -> bool:
        return is_connected(self.node, raft_address)

    async def submit_lease(self, method: Callable[..., Any], *args: Any, timeout: float) -> Any:
        return await submit(method, *args, timeout=timeout)

    async def close(self) -> None:
        await asyncio.to_thread(self.node.destroy_synchronous)


NO_ANSWER = -1
"""What ``submit_membership`` returns when pysyncobj said nothing within the timeout."""


async def submit_membership(method: Callable[..., Any], node: Any, *, timeout: float) -> int:
    """Submit a membership change (``addNodeToCluster`` / ``removeNodeFromCluster``) and
    return pysyncobj's answer (FAIL_REASON.SUCCESS once committed), or NO_ANSWER."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()

    def settle(error: int) -> None:
        if not done.done():
            done.set_result(error)

    def on_done(_: Any, error: int) -> None:
        with suppress(RuntimeError):  # the caller's loop is gone; nobody waits
            loop.call_soon_threadsafe(settle, error)

    method(node, callback=on_done)
    try:
        return await asyncio.wait_for(done, timeout)
    except TimeoutError:
        return NO_ANSWER
