"""A watch stream that survives the loss of the replica it reads from."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from types import TracebackType
from typing import Self

import aiohttp
from yarl import URL

from ha_sc.client.errors import ApiError, Unreachable
from ha_sc.client.transport import Transport, describe
from ha_sc.model.kinds import Kind
from ha_sc.protocol.api_wire import API_PREFIX, WatchBatch, parse_kinds

MAX_SILENT_RECONNECTS = 3
CONNECT_WAIT = 1.0
"""Seconds a replica has to answer a watch request before the next one is asked
(a frozen replica accepts the connection and never answers)."""
"""Reconnects in a row that bring not one line before the stream gives up."""


class WatchStream:
    """Async iterator of ``WatchBatch``; heartbeats are passed on only if asked for."""

    def __init__(
        self,
        transport: Transport,
        kinds: Iterable[Kind | str] | None,
        *,
        idle_timeout: float,
        heartbeats: bool = False,
    ) -> None:
        names = None if kinds is None else ",".join(Kind(k).value for k in kinds)
        self._kinds = ",".join(k.value for k in parse_kinds(names))
        self._transport = transport
        self._idle_timeout = idle_timeout
        self._heartbeats = heartbeats
        self._response: aiohttp.ClientResponse | None = None
        self._buffer = b""
        self._silent_reconnects = 0
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> WatchBatch:
        while not self._closed:
            if self._response is None:
                await self._connect()
            line = await self._next_line()
            if line is None:
                self._drop()
                self._silent_reconnects += 1
                if self._silent_reconnects > MAX_SILENT_RECONNECTS:
                    raise Unreachable("the watch stream keeps ending without a line")
                continue
            self._silent_reconnects = 0
            try:
                batch = WatchBatch.from_json(json.loads(line))
            except ValueError as exc:
                raise ApiError(502, f"malformed watch line: {exc}") from None
            if batch.is_heartbeat and not self._heartbeats:
                continue
            return batch
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._closed = True
        self._drop()

    async def _connect(self) -> None:
        failures: list[str] = []
        error: ApiError | None = None
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._transport.timeout, sock_read=self._idle_timeout
        )
        for index, base in self._transport.rotation():
            url = base.join(URL(f"{API_PREFIX.lstrip('/')}/watch")).with_query(kinds=self._kinds)
            try:
                async with asyncio.timeout(min(self._transport.timeout, CONNECT_WAIT)):
                    response = await self._transport.session().get(url, timeout=timeout)
            except (aiohttp.ClientError, TimeoutError) as exc:
                failures.append(f"{base.origin()}: {describe(exc)}")
                continue
            if response.status == 200:
                self._transport.answered(index)
                self._response = response
                self._buffer = b""
                return
            try:
                doc = await response.json(content_type=None)
                message = doc["error"] if isinstance(doc, dict) else f"HTTP {response.status}"
            except (ValueError, KeyError, aiohttp.ClientError):
                message = f"HTTP {response.status}"
            finally:
                response.release()
            error = ApiError(response.status, str(message))
            if response.status != 503:
                raise error
        if error is not None:
            raise error
        raise Unreachable("no SC replica could be reached: " + "; ".join(failures))

    async def _next_line(self) -> bytes | None:
        """The next line, or None when the connection ended or went silent."""
        assert self._response is not None
        while b"\n" not in self._buffer:
            try:
                chunk = await self._response.content.readany()
            except (aiohttp.ClientError, TimeoutError):
                return None
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _drop(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None
        self._buffer = b""
