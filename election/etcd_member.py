"""One etcd member as the asyncio gRPC client ``aetcd`` reaches it: a channel and its stubs.

aetcd's generated modules load with protobuf's C implementation, so nothing here
changes how protobuf runs in the process. The channel is opened on first use, on
the event loop of the caller (a gRPC asyncio channel belongs to one loop): the
SC's loop for the KV, the election thread's loop for a candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aetcd
import grpc


class EtcdMember:
    """The KV, Lease and Watch services of the member at ``endpoint`` (``host:port``)."""

    def __init__(self, endpoint: str, options: Sequence[tuple[str, int]]) -> None:
        host, port = parse_endpoint(endpoint)
        self.endpoint = endpoint
        self._client = aetcd.Client(host=host, port=port, options=dict(options))
        self._closed = False

    async def services(self) -> Any:
        """The connected aetcd client: ``kvstub``, ``leasestub`` and ``channel``."""
        if self._closed:
            raise grpc.aio.UsageError(f"the channel to etcd at {self.endpoint} is closed")
        await self._client.connect()
        return self._client

    async def watch_stub(self) -> Any:
        """A Watch service stub of its own: each watch is one stream that the caller owns."""
        client = await self.services()
        return aetcd.rpc.WatchStub(client.channel)

    async def close(self) -> None:
        """Close the channel for good; calls under way end as cancelled. Safe to repeat."""
        self._closed = True
        await self._client.close()


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """``(host, port)`` of ``host:port`` (an ``http://`` prefix is accepted)."""
    address = endpoint.removeprefix("http://").removeprefix("https://")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"etcd endpoint must be host:port, got {endpoint!r}")
    return host, int(port)


def describe_rpc_error(error: BaseException) -> str:
    """``CODE: details`` of a gRPC failure, for logs and error messages."""
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return f"{type(error).__name__}: {error}"


def status_of(error: BaseException) -> grpc.StatusCode | None:
    """The gRPC status code of a failed call, None for any other failure."""
    return error.code() if isinstance(error, grpc.aio.AioRpcError) else None
