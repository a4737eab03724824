"""The few etcd calls an election makes, each bounded by a gRPC deadline.

Calls go through the asyncio client ``aetcd`` (its gRPC stubs, over a channel
opened on the candidate's own event loop), so a candidate waits on etcd without
a thread of its own. A watch is one short Watch stream per wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from aetcd import rpc as etcdrpc

from election.etcd_access import PLAIN, EtcdCredentials
from election.etcd_member import EtcdMember, describe_rpc_error, status_of

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


class ElectionClient:
    """etcd calls for one candidate, each bounded by ``request_timeout``.

    ``endpoints`` are ``host:port`` of the cluster's members; a call that cannot
    reach one moves the client on to the next for the following call. The
    channels belong to the event loop of the first call.
    """

    def __init__(
        self,
        endpoints: list[str],
        *,
        request_timeout: float,
        credentials: EtcdCredentials = PLAIN,
    ) -> None:
        if not endpoints:
            raise ValueError("an etcd election needs at least one endpoint")
        self.request_timeout = request_timeout
        self._members = [
            EtcdMember(endpoint, _CHANNEL_OPTIONS, credentials) for endpoint in endpoints
        ]
        self._current = 0

    @property
    def endpoint(self) -> str:
        return self._members[self._current].endpoint

    async def grant(self, ttl: int) -> tuple[int, int]:
        """A new lease: (its id, the TTL etcd granted, which may exceed ``ttl``)."""
        request = etcdrpc.LeaseGrantRequest(TTL=ttl)
        response = await self._call(lambda etcd: etcd.leasestub.LeaseGrant(request, **self._opts))
        if response.error:
            raise EtcdUnreachable(f"etcd refused a lease: {response.error}")
        return int(response.ID), int(response.TTL)

    async def refresh(self, lease_id: int) -> int:
        """Renew the lease once; its TTL from now, 0 if etcd no longer knows it."""

        async def keepalive(etcd: Any) -> Any:
            call = etcd.leasestub.LeaseKeepAlive(metadata=etcd.metadata, **self._opts)
            try:
                await call.write(etcdrpc.LeaseKeepAliveRequest(ID=lease_id))
                return await call.read()
            finally:
                call.cancel()

        response = await self._call(keepalive)
        if response is grpc.aio.EOF:
            raise EtcdUnreachable("etcd ended the keepalive without an answer")
        return int(response.TTL)

    async def revoke(self, lease_id: int) -> None:
        """Revoke the lease, deleting every key bound to it; a lease already gone is fine."""
        request = etcdrpc.LeaseRevokeRequest(ID=lease_id)
        with contextlib.suppress(LeaseGone):
            await self._call(lambda etcd: etcd.leasestub.LeaseRevoke(request, **self._opts))

    async def claim(self, key: str, value: bytes, lease_id: int) -> Claim:
        """Create ``key`` bound to the lease if it is absent; read it either way."""
        name = key.encode()
        request = etcdrpc.TxnRequest(
            compare=[_created_at(name, 0)],
            success=[_put(name, value, lease_id), _get(name)],
            failure=[_get(name)],
        )
        response = await self._txn(request)
        return Claim(bool(response.succeeded), _from_range(response))

    async def read(self, key: str) -> KeyState:
        request = etcdrpc.RangeRequest(key=key.encode())
        response = await self._call(lambda etcd: etcd.kvstub.Range(request, **self._opts))
        revision = int(response.header.revision)
        if not response.kvs:
            return KeyState(None, revision)
        return KeyState(_leader_key(response.kvs[0]), revision)

    async def release(self, key: str, create_revision: int) -> bool:
        """Delete ``key`` only while it is the instance created at ``create_revision``."""
        name = key.encode()
        request = etcdrpc.TxnRequest(
            compare=[_created_at(name, create_revision)],
            success=[etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(key=name))],
        )
        return bool((await self._txn(request)).succeeded)

    async def next_change(self, key: str, start_revision: int, window: float) -> KeyState | None:
        """The key's state after its first change from ``start_revision`` on.

        None when nothing changed within ``window`` seconds, or etcd no longer has
        the history from the start revision: the caller reads the key again and
        watches from there. Cancelling the wait ends the stream.
        """
        create = etcdrpc.WatchCreateRequest(key=key.encode(), start_revision=start_revision)

        async def first_change(etcd: Any) -> KeyState | None:
            call = etcd.watch(timeout=window)
            try:
                await call.write(etcdrpc.WatchRequest(create_request=create))
                while True:
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        raise EtcdUnreachable("watch stream closed by etcd")
                    if response.compact_revision:
                        return None
                    if response.canceled:
                        raise EtcdUnreachable(f"watch cancelled by etcd: {response.cancel_reason}")
                    if response.events:
                        return _after_events(response.events)
            except grpc.aio.AioRpcError as error:
                if status_of(error) == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return None
                raise
            finally:
                call.cancel()

        return await self._call(first_change)

    def moved_on(self) -> None:
        """The endpoint in use stopped answering: use the next one from now on."""
        self._current = (self._current + 1) % len(self._members)

    async def close(self) -> None:
        await asyncio.gather(*(member.close() for member in self._members))

    @property
    def _opts(self) -> dict[str, Any]:
        return {"timeout": self.request_timeout}

    async def _txn(self, request: Any) -> Any:
        return await self._call(lambda etcd: etcd.kvstub.Txn(request, **self._opts))

    async def _call(self, request: Callable[[Any], Awaitable[T]]) -> T:
        member = self._members[self._current]
        try:
            return await request(await member.services(self.request_timeout))
        except grpc.aio.AioRpcError as error:
            member.call_failed(error)
            if status_of(error) == grpc.StatusCode.NOT_FOUND:
                raise LeaseGone(describe_rpc_error(error)) from error
            self.moved_on()
            raise EtcdUnreachable(member.explain(error)) from error
        except grpc.aio.UsageError as error:  # the channel is closed
            raise EtcdUnreachable(str(error)) from error


def _created_at(key: bytes, revision: int) -> Any:
    return etcdrpc.Compare(
        key=key,
        result=etcdrpc.Compare.EQUAL,
        target=etcdrpc.Compare.CREATE,
        create_revision=revision,
    )


def _put(key: bytes, value: bytes, lease_id: int) -> Any:
    return etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=key, value=value, lease=lease_id))


def _get(key: bytes) -> Any:
    return etcdrpc.RequestOp(request_range=etcdrpc.RangeRequest(key=key))


def _leader_key(kv: Any) -> LeaderKey:
    return LeaderKey(bytes(kv.value), int(kv.create_revision), int(kv.lease))


def _from_range(response: Any) -> KeyState:
    """The key as the last read of a campaign transaction found it."""
    found = response.responses[-1].response_range.kvs if response.responses else []
    if not found:  # both branches of a campaign read the key, and it exists in both
        raise EtcdUnreachable("etcd answered a campaign transaction without the leader key")
    return KeyState(_leader_key(found[0]), int(response.header.revision))


def _after_events(events: Any) -> KeyState:
    last = events[-1]
    revision = int(last.kv.mod_revision)
    if last.type == etcdrpc.Event.DELETE:
        return KeyState(None, revision)
    return KeyState(_leader_key(last.kv), revision)
