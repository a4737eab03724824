"""``SpuChannel``: one TCP connection to an SPU's public port, speaking the data wire.

One owner uses a channel at a time (a partition's sender, or a partition's fetcher):
it sends requests, possibly several before reading (pipelining), and reads the
answers, which the SPU returns in request order. Any failure (connection refused or
lost, an answer late or out of order, broken framing) closes the channel and raises
``ChannelClosed``; the owner opens a new one.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections import deque
from typing import Any

from ha_sc.client.data_errors import ChannelClosed
from ha_sc.protocol.address import parse_address
from ha_sc.protocol.data import (
    DataFrameError,
    FetchRequest,
    FetchResponse,
    ProduceRequest,
    ProduceResponse,
    encode_frame,
    response_decoder,
    write_frame,
)
from ha_sc.stream_close import close_stream

READ_CHUNK = 256 * 1024
"""Bytes asked of the socket per read."""

Request = ProduceRequest | FetchRequest
Response = ProduceResponse | FetchResponse


class SpuChannel:
    """A connection to ``address`` (``host:port``); open it with ``connect``."""

    def __init__(
        self, address: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.address = address
        self._reader = reader
        self._writer = writer
        self._decoder = response_decoder()
        self._frames: deque[tuple[Any, bytes]] = deque()
        self._expected: deque[int] = deque()
        self._ids = itertools.count(1)
        self._closed: str | None = None

    @classmethod
    async def connect(
        cls, address: str, *, timeout: float, tls: ssl.SSLContext | None = None
    ) -> SpuChannel:
        """Open a connection (over TLS with ``tls``, the SPU's certificate checked
        against ``address``); ChannelClosed if it cannot be opened within ``timeout`` s."""
        try:
            host, port = parse_address(address)
        except ValueError as exc:
            raise ChannelClosed(f"spu address {address!r}: {exc}") from None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, limit=READ_CHUNK, ssl=tls
                )
        except (OSError, TimeoutError) as exc:
            reason = "no answer in time" if isinstance(exc, TimeoutError) else str(exc)
            raise ChannelClosed(f"cannot connect to spu {address}: {reason}") from None
        return cls(address, reader, writer)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def in_flight(self) -> int:
        """Requests sent whose answers were not read yet."""
        return len(self._expected)

    def next_id(self) -> int:
        return next(self._ids)

    def post(self, request: Request, body: bytes | memoryview = b"") -> None:
        """Queue one request (its ``id`` from ``next_id``) for sending, without waiting
        for the socket to take it."""
        self._check_open()
        try:
            pieces = encode_frame(request, body)
        except DataFrameError as exc:
            raise ChannelClosed(f"request to spu {self.address} not sent: {exc}") from None
        self._expected.append(request.id)
        try:
            write_frame(self._writer.write, pieces)
        except OSError as exc:
            self.close(f"connection to spu {self.address} lost while sending: {exc}")
            raise ChannelClosed(self._closed or "") from None

    async def send(self, request: Request, body: bytes | memoryview = b"") -> None:
        """Send one request and wait until the socket has taken most of it."""
        self.post(request, body)
        try:
            await self._writer.drain()
        except OSError as exc:
            self.close(f"connection to spu {self.address} lost while sending: {exc}")
            raise ChannelClosed(self._closed or "") from None

    async def receive(self, *, timeout: float) -> tuple[Response, bytes]:
        """The answer to the oldest request not yet answered, waiting up to ``timeout`` s."""
        self._check_open()
        if not self._expected:
            raise RuntimeError("receive with no request in flight")
        try:
            async with asyncio.timeout(timeout):
                while not self._frames:
                    chunk = await self._reader.read(READ_CHUNK)
                    if not chunk:
                        self.close(f"spu {self.address} closed the connection")
                        raise ChannelClosed(self._closed or "")
                    self._frames.extend(self._decoder.feed(chunk))
        except TimeoutError:
            self.close(f"spu {self.address} did not answer within {timeout:g} s")
            raise ChannelClosed(self._closed or "") from None
        except OSError as exc:
            self.close(f"connection to spu {self.address} lost: {exc}")
            raise ChannelClosed(self._closed or "") from None
        except DataFrameError as exc:
            self.close(f"spu {self.address} sent a broken frame: {exc}")
            raise ChannelClosed(self._closed or "") from None
        header, body = self._frames.popleft()
        expected = self._expected.popleft()
        if not isinstance(header, ProduceResponse | FetchResponse) or header.id != expected:
            self.close(f"spu {self.address} answered {header!r} where id {expected} was due")
            raise ChannelClosed(self._closed or "")
        return header, body

    async def exchange(
        self, request: Request, body: bytes | memoryview = b"", *, timeout: float
    ) -> tuple[Response, bytes]:
        """Send one request and read its answer."""
        await self.send(request, body)
        return await self.receive(timeout=timeout)

    def close(self, reason: str = "closed") -> None:
        if self._closed is None:
            self._closed = reason
            self._writer.close()
        self._expected.clear()
        self._frames.clear()

    async def aclose(self, reason: str = "closed") -> None:
        """Close and wait (briefly) for the socket to be released."""
        self.close(reason)
        await close_stream(self._writer, grace=1.0)

    def _check_open(self) -> None:
        if self._closed is not None:
            raise ChannelClosed(self._closed)
