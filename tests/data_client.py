"""A minimal raw-socket client of the SPU data wire, for tests and benchmarks: frames
out, frames in, nothing hidden (no retries, no batching, no metadata)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

from ha_sc.protocol import parse_address
from ha_sc.protocol.data import (
    Acks,
    FetchRequest,
    FetchResponse,
    Isolation,
    ProduceRequest,
    ProduceResponse,
    encode_frame,
    response_decoder,
)
from ha_sc.spu.storage import decode_records, encode_records, iter_batches, make_batch

READ_CHUNK = 1 << 20


def records_batch(
    values: Sequence[bytes], *, producer_id: int = 0, base_sequence: int = -1, ts: int = 1000
) -> bytes:
    """One batch of ``values`` (idempotent when ``producer_id`` is given)."""
    return make_batch(
        encode_records(values),
        record_count=len(values),
        first_timestamp_ms=ts,
        producer_id=producer_id,
        base_sequence=base_sequence,
    )


def values_in(body: bytes, *, from_offset: int = 0) -> list[tuple[int, bytes]]:
    """(offset, value) of every record in a fetch body at or after ``from_offset``."""
    found = []
    for batch in iter_batches(body):
        for index, record in enumerate(decode_records(batch.payload)):
            offset = batch.header.base_offset + index
            if offset >= from_offset:
                found.append((offset, record.value))
    return found


class RawDataClient:
    """One connection to an SPU port; ``send``/``receive`` for pipelining."""

    def __init__(self, address: str, *, tls: ssl.SSLContext | None = None) -> None:
        self.address = address
        self._tls = tls
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._decoder = response_decoder()
        self._ready: list[tuple[Any, bytes]] = []
        self._ids = 0

    async def __aenter__(self) -> Self:
        host, port = parse_address(self.address)
        self._reader, self._writer = await asyncio.open_connection(host, port, ssl=self._tls)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def send_raw(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)

    def send(self, header: Any, body: bytes = b"") -> None:
        assert self._writer is not None
        self._writer.writelines(encode_frame(header, body))

    async def receive(self, timeout: float = 10.0) -> tuple[Any, bytes]:
        assert self._reader is not None and self._writer is not None
        async with asyncio.timeout(timeout):
            await self._writer.drain()
            while not self._ready:
                data = await self._reader.read(READ_CHUNK)
                if not data:
                    raise ConnectionError("the spu closed the connection")
                self._ready.extend(self._decoder.feed(data))
        return self._ready.pop(0)

    async def request(
        self, header: Any, body: bytes = b"", timeout: float = 10.0
    ) -> tuple[Any, bytes]:
        self.send(header, body)
        return await self.receive(timeout)

    async def produce(
        self,
        topic: str,
        partition: int,
        *batches: bytes,
        acks: Acks = Acks.ALL,
        timeout_ms: int = 5000,
    ) -> ProduceResponse:
        header = ProduceRequest(
            id=self.next_id(), topic=topic, partition=partition, acks=acks, timeout_ms=timeout_ms
        )
        response, _ = await self.request(header, b"".join(batches), timeout=timeout_ms / 1000 + 5)
        assert isinstance(response, ProduceResponse)
        return response

    async def fetch(
        self,
        topic: str,
        partition: int,
        offset: int,
        *,
        isolation: Isolation = Isolation.COMMITTED,
        wait_ms: int = 0,
        max_bytes: int = 1 << 20,
    ) -> tuple[FetchResponse, bytes]:
        header = FetchRequest(
            id=self.next_id(),
            topic=topic,
            partition=partition,
            offset=offset,
            isolation=isolation,
            wait_ms=wait_ms,
            max_bytes=max_bytes,
        )
        response, body = await self.request(header, timeout=wait_ms / 1000 + 10)
        assert isinstance(response, FetchResponse)
        return response, body

    async def read_all(
        self, topic: str, partition: int, *, isolation: Isolation = Isolation.COMMITTED
    ) -> list[tuple[int, bytes]]:
        """Every record from offset 0 up to the HW (or LEO), in order."""
        found: list[tuple[int, bytes]] = []
        offset = 0
        for _ in range(100_000):
            response, body = await self.fetch(topic, partition, offset, isolation=isolation)
            assert response.error is None, response.error
            records = values_in(body, from_offset=offset)
            if not records:
                return found
            found.extend(records)
            offset = records[-1][0] + 1
        raise AssertionError("read_all did not reach the end")
