"""The few etcd calls an election makes: synchronous, each bounded by a gRPC deadline.

etcd3 0.12 is synchronous, so EtcdCandidate runs these calls on worker threads;
the deadlines guarantee no thread waits on etcd forever. Leases and transactions
go through etcd3's client. Watches use etcd's Watch service directly, one short
stream per wait: etcd3's own ``Watcher`` keeps a stream thread per client that
re-dials without pause while the server is unreachable and dies with an
unhandled error once its channel is closed.
"""

from __future__ import annotations

import os

# etcd3 0.12 ships protobuf modules generated for protobuf 3, which protobuf >= 4
# refuses with its C implementation ("Descriptors cannot be created directly").
# protobuf reads this variable once, on its first import, so it must be set before
# anything in the process imports protobuf; setdefault keeps an operator's choice.
os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

import contextlib
import json
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

with warnings.catch_warnings():
    # the pure-Python protobuf warns about how etcd3's generated modules build descriptors
    warnings.filterwarnings("ignore", "Call to deprecated create function", DeprecationWarning)
    try:
        import etcd3
        from etcd3 import etcdrpc
        from etcd3.etcdrpc import kv_pb2
    except TypeError as error:  # protobuf was already loaded with its C implementation
        raise ImportError(
            "etcd3 cannot load its protobuf modules: protobuf was imported before "
            "election.etcd_client with a non-Python implementation; set "
            "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python in the environment"
        ) from error

T = TypeVar("T")

_CHANNEL_OPTIONS = [
    # dial a restarted etcd again within half a second, not after gRPC's default minutes
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]


class EtcdUnreachable(Exception):
    """A call got no answer from etcd within its deadline, or etcd refused it."""


class LeaseGone(Exception):
    """etcd no longer knows the lease a write was bound to (it expired or was revoked)."""


@dataclass(frozen=True, slots=True)
class LeaderKey:
    """The leader key as etcd holds it."""

    value: bytes
    create_revision: int
    lease: int

    def holder(self) -> tuple[str, str]:
        """(candidate, address) as written by the candidate that created the key."""
        try:
            claim = json.loads(self.value)
            return str(claim["candidate"]), str(claim["address"])
        except (ValueError, TypeError, KeyError):
            return self.value.decode(errors="replace"), ""


@dataclass(frozen=True, slots=True)
class KeyState:
    """The leader key (None: absent) as of etcd revision ``revision``."""

    key: LeaderKey | None
    revision: int


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of a campaign transaction: whether it created the key, and the key after it."""

    won: bool
    state: KeyState


def claim_value(candidate: str, address: str) -> bytes:
    return json.dumps({"candidate": candidate, "address": address}).encode()


class KeyWatch:
    """One etcd Watch stream on a key from a revision, open for at most ``window`` seconds."""

    def __init__(self, stub: Any, key: bytes, start_revision: int, window: float) -> None:
        self._ended = threading.Event()
        self._window = window
        create = etcdrpc.WatchCreateRequest(key=key, start_revision=start_revision)
        try:
            self._call = stub.Watch(self._requests(create), timeout=window)
        except ValueError as error:  # the channel is closed
            raise EtcdUnreachable(str(error)) from error

    def wait(self) -> KeyState | None:
        """Blocks until the first change of the key (its state after that change).

        None when nothing changed within the window, the watch was cancelled, or
        etcd no longer has the history from the start revision: the caller reads
        the key again and watches from there.
        """
        try:
            for response in self._call:
                if response.compact_revision:
                    return None
                if response.canceled:
                    raise EtcdUnreachable(f"watch cancelled by etcd: {response.cancel_reason}")
                if response.events:
                    return _after_events(response.events)
            raise EtcdUnreachable("watch stream closed by etcd")
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
                return None
            raise EtcdUnreachable(_describe(error)) from error
        finally:
            self._ended.set()

    def cancel(self) -> None:
        """End the stream now; a blocked ``wait()`` returns None at once. Any thread."""
        self._ended.set()
        self._call.cancel()

    def _requests(self, create: Any) -> Iterator[Any]:
        yield etcdrpc.WatchRequest(create_request=create)
        # keep our side of the stream open until the wait is over, and never past the window
        self._ended.wait(self._window + 1.0)


class ElectionClient:
    """Synchronous etcd calls for one candidate, each bounded by ``request_timeout``.

    ``endpoints`` are ``host:port`` of the cluster's members; a call that cannot
    reach one moves the client on to the next for the following call.
    """

    def __init__(self, endpoints: list[str], *, request_timeout: float) -> None:
        if not endpoints:
            raise ValueError("an etcd election needs at least one endpoint")
        self.request_timeout = request_timeout
        self._endpoints = list(endpoints)
        self._clients = [_connect(endpoint, request_timeout) for endpoint in endpoints]
        self._watch_stubs = [etcdrpc.WatchStub(client.channel) for client in self._clients]
        self._current = 0

    @property
    def endpoint(self) -> str:
        return self._endpoints[self._current]

    def grant(self, ttl: int) -> tuple[int, int]:
        """A new lease: (its id, the TTL etcd granted, which may exceed ``ttl``)."""
        lease = self._call(lambda etcd: etcd.lease(ttl))
        return int(lease.id), int(lease.ttl)

    def refresh(self, lease_id: int) -> int:
        """Renew the lease once; its TTL from now, 0 if etcd no longer knows it."""
        responses = self._call(lambda etcd: list(etcd.refresh_lease(lease_id)))
        if not responses:
            raise EtcdUnreachable("etcd ended the keepalive without an answer")
        return int(responses[0].TTL)

    def revoke(self, lease_id: int) -> None:
        """Revoke the lease, deleting every key bound to it; a lease already gone is fine."""
        with contextlib.suppress(LeaseGone):
            self._call(lambda etcd: etcd.revoke_lease(lease_id))

    def claim(self, key: str, value: bytes, lease_id: int) -> Claim:
        """Create ``key`` bound to the lease if it is absent; read it either way."""

        def transaction(etcd: Any) -> Claim:
            ops = etcd.transactions
            won, responses = etcd.transaction(
                compare=[ops.create(key) == 0],
                success=[ops.put(key, value, lease=lease_id), ops.get(key)],
                failure=[ops.get(key)],
            )
            return Claim(bool(won), _from_range(responses[-1]))

        return self._call(transaction)

    def read(self, key: str) -> KeyState:
        response = self._call(lambda etcd: etcd.get_response(key))
        revision = int(response.header.revision)
        if not response.kvs:
            return KeyState(None, revision)
        kv = response.kvs[0]
        return KeyState(
            LeaderKey(bytes(kv.value), int(kv.create_revision), int(kv.lease)), revision
        )

    def release(self, key: str, create_revision: int) -> bool:
        """Delete ``key`` only while it is the instance created at ``create_revision``."""

        def transaction(etcd: Any) -> bool:
            ops = etcd.transactions
            deleted, _ = etcd.transaction(
                compare=[ops.create(key) == create_revision],
                success=[ops.delete(key)],
                failure=[],
            )
            return bool(deleted)

        return self._call(transaction)

    def watch(self, key: str, start_revision: int, window: float) -> KeyWatch:
        """Start watching ``key`` from ``start_revision``; call ``wait()`` on a thread."""
        return KeyWatch(self._watch_stubs[self._current], key.encode(), start_revision, window)

    def moved_on(self) -> None:
        """The endpoint in use stopped answering: use the next one from now on."""
        self._current = (self._current + 1) % len(self._clients)

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def _call(self, request: Callable[[Any], T]) -> T:
        try:
            return request(self._clients[self._current])
        except etcd3.Etcd3Exception as error:
            self.moved_on()
            raise EtcdUnreachable(str(error) or type(error).__name__) from error
        except grpc.RpcError as error:
            if isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.NOT_FOUND:
                raise LeaseGone(_describe(error)) from error
            self.moved_on()
            raise EtcdUnreachable(_describe(error)) from error
        except ValueError as error:
            if "closed channel" not in str(error):
                raise
            raise EtcdUnreachable(str(error)) from error


def _connect(endpoint: str, timeout: float) -> Any:
    address = endpoint.removeprefix("http://").removeprefix("https://")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"etcd endpoint must be host:port, got {endpoint!r}")
    return etcd3.client(host=host, port=int(port), timeout=timeout, grpc_options=_CHANNEL_OPTIONS)


def _from_range(found: list[tuple[bytes, Any]]) -> KeyState:
    """A range response of a transaction: ``[(value, KVMetadata)]``, empty if absent."""
    if not found:  # both branches of a campaign read the key, and it exists in both
        raise EtcdUnreachable("etcd answered a campaign transaction without the leader key")
    value, meta = found[0]
    key = LeaderKey(bytes(value), int(meta.create_revision), int(meta.lease_id))
    return KeyState(key, int(meta.response_header.revision))


def _after_events(events: Any) -> KeyState:
    last = events[-1]
    kv = last.kv
    revision = int(kv.mod_revision)
    if last.type == kv_pb2.Event.DELETE:
        return KeyState(None, revision)
    return KeyState(LeaderKey(bytes(kv.value), int(kv.create_revision), int(kv.lease)), revision)


def _describe(error: grpc.RpcError) -> str:
    if isinstance(error, grpc.Call):
        return f"{error.code().name}: {error.details()}"
    return str(error)
