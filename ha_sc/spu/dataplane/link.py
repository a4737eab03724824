"""A follower SPU's connection to a leader SPU's private port, carrying the fetch
session of every replica it follows from that leader (``follower_session.py``).

Each fetch goes out on the one connection with an id of the link's own and waits for
the answer with that id; on the private port the leader answers each fetch when it is
ready, in any order. A link given this SPU's fetch key first proves its follower id on each
new connection (``replica_hello``, ``replica_proof``: protocol/fetch_proof.py); a
refused proof counts as a failed connect. The connection is made on the first fetch
and again after it drops; a drop fails every fetch in flight (their replicas retry). A
fetch with no answer past its wait (and some slack) means a dead connection: it is
dropped and made again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
import time
from collections.abc import Callable
from typing import TypeVar

from ha_sc.protocol import parse_address
from ha_sc.protocol.data import (
    DataFrameDecoder,
    DataFrameError,
    ReplicaChallenge,
    ReplicaFetchRequest,
    ReplicaFetchResponse,
    ReplicaHello,
    ReplicaProof,
    ReplicaProven,
    ReplicaSessionFetch,
    ReplicaSessionResult,
    encode_frame,
    response_decoder,
)
from ha_sc.protocol.fetch_proof import fetch_proof

log = logging.getLogger("ha_sc.spu.dataplane")

READ_CHUNK = 1 << 20
RETRY_INITIAL = 0.05
RETRY_MAX = 1.0
"""After a failed connect, the link waits 0.05 s (doubling to 1 s) before the next."""


class LinkDown(ConnectionError):
    """The leader cannot be reached, or the connection dropped with the fetch in flight."""


class NotProven(Exception):
    """The leader did not accept this SPU's proof of its follower id."""


AnswerT = TypeVar("AnswerT", ReplicaChallenge, ReplicaProven)
FetchAnswer = tuple[ReplicaFetchResponse | ReplicaSessionResult, bytes]


async def _answer(
    reader: asyncio.StreamReader, decoder: DataFrameDecoder, kind: type[AnswerT]
) -> AnswerT:
    """The leader's next answer, which must be a ``kind``."""
    while (frame := decoder.pop()) is None:
        data = await reader.read(READ_CHUNK)
        if not data:
            raise ConnectionError("closed by the leader")
        decoder.push(data)
    header, _ = frame
    if not isinstance(header, kind):
        raise NotProven(f"expected a {kind.__name__} answer, got {header!r}")
    return header


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.pending: dict[int, asyncio.Future[FetchAnswer]] = {}
        self.reading: asyncio.Task[None] | None = None
        self.broken: str | None = None

    def fail(self, reason: str) -> None:
        if self.broken is None:
            self.broken = reason
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(LinkDown(reason))
        self.writer.close()


class LeaderLink:
    """Fetches to leader SPU ``leader``, whose private address ``address`` looks up."""

    def __init__(
        self,
        leader: int,
        address: Callable[[], str | None],
        *,
        connect_timeout: float,
        follower: int = 0,
        fetch_key: bytes | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``follower``: this SPU's id; ``fetch_key``: its key, to prove that id on each
        new connection (None: the connection proves nothing)."""
        self.leader = leader
        self._follower = follower
        self._fetch_key = fetch_key
        self._tls = tls
        self._address = address
        self._connect_timeout = connect_timeout
        self._connection: _Connection | None = None
        self._connecting = asyncio.Lock()
        self._ids = itertools.count(1)
        self._closed = False
        self._down: tuple[float, str] | None = None
        """Until when a failed connect is not tried again, and why it failed: the
        replicas that follow this leader share one attempt instead of each making its own."""
        self._retry = RETRY_INITIAL
        self.connections = 0
        """Connections made (for tests)."""

    async def fetch(
        self, request: ReplicaFetchRequest, timeout: float
    ) -> tuple[ReplicaFetchResponse, bytes]:
        """Send ``request`` (its id replaced) and wait up to ``timeout`` s for the answer.
        Raises LinkDown or TimeoutError."""
        response, body = await self._call(request, b"", timeout)
        if not isinstance(response, ReplicaFetchResponse):
            raise LinkDown(f"spu {self.leader} answered a replica_fetch with {response.type}")
        return response, body

    async def session_fetch(
        self, request: ReplicaSessionFetch, body: bytes, timeout: float
    ) -> tuple[ReplicaSessionResult, bytes]:
        """Send the session fetch ``request`` with ``body`` (its id replaced) and wait up
        to ``timeout`` s for the answer. Raises LinkDown or TimeoutError."""
        response, answer = await self._call(request, body, timeout)
        if not isinstance(response, ReplicaSessionResult):
            raise LinkDown(f"spu {self.leader} answered a session fetch with {response.type}")
        return response, answer

    async def _call(
        self, request: ReplicaFetchRequest | ReplicaSessionFetch, body: bytes, timeout: float
    ) -> FetchAnswer:
        connection = await self._connected()
        request_id = next(self._ids)
        future: asyncio.Future[FetchAnswer] = asyncio.get_running_loop().create_future()
        connection.pending[request_id] = future
        try:
            numbered = request.model_copy(update={"id": request_id})
            connection.writer.writelines(encode_frame(numbered, body))
            async with asyncio.timeout(timeout):
                await connection.writer.drain()
                return await future
        except (ConnectionError, OSError) as exc:
            future.cancel()  # this call raises instead: no one is left to read its future
            connection.fail(f"write failed: {exc}")
            raise LinkDown(str(exc)) from exc
        except TimeoutError:
            # the leader answers every fetch within its wait: this connection is dead
            connection.fail(f"a fetch had no answer within {timeout:g} s")
            raise
        finally:
            connection.pending.pop(request_id, None)

    async def close(self) -> None:
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.fail("link closed")
            if connection.reading is not None:
                connection.reading.cancel()
                await asyncio.gather(connection.reading, return_exceptions=True)

    async def _connected(self) -> _Connection:
        async with self._connecting:
            connection = self._connection
            if connection is not None and connection.broken is None:
                return connection
            if self._closed:
                raise LinkDown(f"link to spu {self.leader} is closed")
            now = time.monotonic()
            if self._down is not None and now < self._down[0]:
                raise LinkDown(self._down[1])
            address = self._address()
            if address is None:
                raise LinkDown(f"no private address known for spu {self.leader}")
            host, port = parse_address(address)
            decoder = response_decoder()
            opened: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
            try:
                async with asyncio.timeout(self._connect_timeout):
                    reader, writer = opened = await asyncio.open_connection(
                        host, port, ssl=self._tls
                    )
                    if self._fetch_key is not None:
                        await self._prove(reader, writer, decoder, self._fetch_key)
            except (OSError, TimeoutError, DataFrameError, NotProven) as exc:
                reason = f"cannot reach spu {self.leader} at {address}: {exc!r}"
                if isinstance(exc, NotProven):
                    reason = f"spu {self.leader} at {address} refused this follower: {exc}"
                if opened is not None:
                    opened[1].close()
                self._down = (time.monotonic() + self._retry, reason)
                self._retry = min(self._retry * 2, RETRY_MAX)
                raise LinkDown(reason) from exc
            self._down, self._retry = None, RETRY_INITIAL
            connection = _Connection(reader, writer)
            connection.reading = asyncio.create_task(
                self._read(connection, decoder), name=f"replica link to spu {self.leader}"
            )
            self._connection = connection
            self.connections += 1
            log.info("replica link to spu %d at %s up", self.leader, address)
            return connection

    async def _prove(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        decoder: DataFrameDecoder,
        key: bytes,
    ) -> None:
        """Prove this SPU's follower id on a new connection (protocol/fetch_proof.py)."""
        follower = self._follower
        writer.writelines(encode_frame(ReplicaHello(id=0, follower=follower)))
        challenge = await _answer(reader, decoder, ReplicaChallenge)
        if challenge.error is not None:
            raise NotProven(challenge.error.message)
        proof = fetch_proof(
            key, bytes.fromhex(challenge.nonce), leader=self.leader, follower=follower
        )
        writer.writelines(encode_frame(ReplicaProof(id=1, follower=follower, proof=proof.hex())))
        proven = await _answer(reader, decoder, ReplicaProven)
        if proven.error is not None:
            raise NotProven(proven.error.message)

    async def _read(self, connection: _Connection, decoder: DataFrameDecoder) -> None:
        reason = "closed by the leader"
        try:
            while True:
                data = await connection.reader.read(READ_CHUNK)
                if not data:
                    break
                for header, body in decoder.feed(data):
                    if not isinstance(header, ReplicaFetchResponse | ReplicaSessionResult):
                        reason = f"unexpected answer from the leader: {header!r}"
                        return
                    future = connection.pending.get(header.id)
                    if future is not None and not future.done():
                        future.set_result((header, body))
        except (ConnectionError, OSError, DataFrameError) as exc:
            reason = str(exc) or type(exc).__name__
        finally:
            with contextlib.suppress(Exception):
                connection.fail(reason)
            if self._connection is connection:
                self._connection = None
            if not self._closed:
                log.info("replica link to spu %d down: %s", self.leader, reason)
