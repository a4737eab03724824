"""One etcd member as the asyncio gRPC client reaches it: a channel and its stubs.

The stubs are ``aetcd``'s generated ones (its modules load with protobuf's C
implementation, so nothing here changes how protobuf runs in the process); the
channel is opened here, plain or TLS as ``EtcdCredentials`` say, because aetcd's
own client only dials plain gRPC. With an etcd user, the member authenticates
when it connects and sends the token with every call; after a failed call it
authenticates afresh on next use (a restarted member forgets its tokens). The
channel is opened on first use, on the event loop of the caller (a gRPC asyncio
channel belongs to one loop): the SC's loop for the KV, the election thread's
loop for a candidate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from aetcd import rpc

from election.etcd_access import PLAIN, EtcdCredentials

_NO_ANSWER = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})

AUTH_TIMEOUT = 5.0
"""Seconds an Authenticate call may take when the caller gives no deadline."""


class _Token:
    """The current etcd auth token of one member's channel (None: none yet)."""

    def __init__(self) -> None:
        self.value: str | None = None

    def metadata(self) -> tuple[tuple[str, str], ...] | None:
        """What a call sends for etcd to know its user (etcd reads the ``token`` key)."""
        return None if self.value is None else (("token", self.value),)

    def details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        if self.value is None:
            return details
        metadata = grpc.aio.Metadata(*(details.metadata or ()), ("token", self.value))
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


class _TokenOnUnary(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # no stubs
    """Adds the member's auth token to every unary call.

    Stream calls (watches, lease keep-alives) are given ``Services.metadata`` by their
    caller instead: gRPC runs an intercepted stream call's writes through a task of its
    own that outlives a cancelled call."""

    def __init__(self, token: _Token) -> None:
        self._token = token

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._token.details(details), request)


@dataclass(frozen=True, slots=True)
class Services:
    """The channel to one member, the stubs the clients call, and the metadata a stream
    call must send (the auth token, if any)."""

    channel: grpc.aio.Channel
    kvstub: Any
    leasestub: Any
    _token: _Token

    @property
    def metadata(self) -> tuple[tuple[str, str], ...] | None:
        return self._token.metadata()

    def watch(self, **options: Any) -> Any:
        """A Watch stream of its own, carrying the auth token."""
        return rpc.WatchStub(self.channel).Watch(metadata=self.metadata, **options)


class EtcdMember:
    """The KV, Lease and Watch services of the member at ``endpoint`` (``host:port``)."""

    def __init__(
        self,
        endpoint: str,
        options: Sequence[tuple[str, int]],
        credentials: EtcdCredentials = PLAIN,
    ) -> None:
        host, port = parse_endpoint(endpoint)
        self.endpoint = endpoint
        self._target = f"{host}:{port}"
        self._options = list(options)
        self._credentials = credentials
        self._token = _Token()
        self._services: Services | None = None
        self._authenticating: asyncio.Lock | None = None
        self._closed = False

    async def services(self, timeout: float = AUTH_TIMEOUT) -> Services:
        """The open channel and its stubs, authenticated if an etcd user is set (the
        Authenticate call, when one is needed, waits ``timeout`` at most: the caller's
        own deadline, so a member that is down costs no more than any other call)."""
        if self._closed:
            raise grpc.aio.UsageError(f"the channel to etcd at {self.endpoint} is closed")
        if self._services is None:
            self._services = self._open()
        if self._credentials.user is not None and self._token.value is None:
            await self._authenticate(self._services.channel, timeout)
        return self._services

    def explain(self, error: BaseException) -> str:
        """``describe_rpc_error`` of a failed call, with what to check when no connection
        to the member could be made (gRPC says only that the deadline passed)."""
        reason = describe_rpc_error(error)
        services = self._services
        if status_of(error) not in _NO_ANSWER or services is None:
            return reason
        if services.channel.get_state() is grpc.ChannelConnectivity.READY:
            return reason
        if self._credentials.tls:
            check = (
                "the member is up and serves TLS, and that --etcd-ca, --etcd-cert and "
                "--etcd-key match its certificates"
            )
        else:
            check = "the member is up, and serves plain gRPC (an https member needs --etcd-ca)"
        return f"{reason}; no connection to {self.endpoint}: check that {check}"

    def call_failed(self, error: BaseException) -> None:
        """A call on this member failed: when for its token (a restarted member forgets
        every token; a change to etcd's users outdates them), authenticate again before
        the next call. Other failures keep the token: logging in costs etcd a password
        hash and a Raft round, too much to repeat after every timeout."""
        if token_refused(error):
            self._token.value = None

    async def close(self) -> None:
        """Close the channel for good; calls under way end as cancelled. Safe to repeat."""
        self._closed = True
        services, self._services = self._services, None
        if services is not None:
            await services.channel.close()

    def _open(self) -> Services:
        interceptors = None
        if self._credentials.user is not None:
            interceptors = [_TokenOnUnary(self._token)]
        creds = self._credentials
        if creds.tls:
            tls = grpc.ssl_channel_credentials(
                root_certificates=creds.ca, private_key=creds.key, certificate_chain=creds.cert
            )
            channel = grpc.aio.secure_channel(
                self._target, tls, options=self._options, interceptors=interceptors
            )
        else:
            channel = grpc.aio.insecure_channel(
                self._target, options=self._options, interceptors=interceptors
            )
        return Services(channel, rpc.KVStub(channel), rpc.LeaseStub(channel), self._token)

    async def _authenticate(self, channel: grpc.aio.Channel, timeout: float) -> None:
        if self._authenticating is None:
            self._authenticating = asyncio.Lock()
        async with self._authenticating:
            if self._token.value is not None:
                return
            request = rpc.AuthenticateRequest(
                name=self._credentials.user, password=self._credentials.password
            )
            response = await rpc.AuthStub(channel).Authenticate(
                request, timeout=timeout, wait_for_ready=True
            )
            self._token.value = str(response.token)


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """``(host, port)`` of ``host:port`` (an ``http://`` or ``https://`` prefix is accepted)."""
    address = endpoint.removeprefix("http://").removeprefix("https://")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"etcd endpoint must be host:port, got {endpoint!r}")
    return host, int(port)


def token_refused(error: BaseException) -> bool:
    """Whether etcd refused a call for its auth token (unknown, expired or outdated)."""
    if not isinstance(error, grpc.aio.AioRpcError):
        return False
    if error.code() is grpc.StatusCode.UNAUTHENTICATED:
        return True
    return "revision of auth store is old" in (error.details() or "")


def describe_rpc_error(error: BaseException) -> str:
    """``CODE: details`` of a gRPC failure, for logs and error messages."""
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return f"{type(error).__name__}: {error}"


def status_of(error: BaseException) -> grpc.StatusCode | None:
    """The gRPC status code of a failed call, None for any other failure."""
    return error.code() if isinstance(error, grpc.aio.AioRpcError) else None
