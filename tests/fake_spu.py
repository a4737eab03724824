"""In-memory stand-ins for unit tests of the streaming client: an SPU speaking the
data wire on loopback (``FakeSpu``), and the SC's metadata (``FakeSc``).

The fake SPU keeps each partition as a list of batches, sets their base offsets,
drops a batch whose producer id and base sequence it already has (answering the
first offset, ``duplicate``), refuses one that leaves a gap in its producer's
sequences (``out_of_sequence``), serves fetches (committed reads stop at ``hw``), and
can be told to misbehave: not lead a partition, refuse with an error code, write a
produce and then drop the connection without answering, or lose its last batches (as
a new leader lacking what the old one acknowledged).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ha_sc.client.errors import Unreachable
from ha_sc.client.metadata import ClusterMetadata
from ha_sc.model import (
    Endpoint,
    ObjectMeta,
    PartitionSpec,
    PartitionStatus,
    SpuSpec,
    SpuStatus,
)
from ha_sc.model.kinds import Kind, Partition, Spu
from ha_sc.protocol.api_wire import WatchBatch
from ha_sc.protocol.data import (
    Acks,
    DataError,
    ErrorCode,
    FetchRequest,
    FetchResponse,
    Isolation,
    MalformedHeader,
    ProduceRequest,
    ProduceResponse,
    encode_frame,
    request_decoder,
)
from ha_sc.protocol.record_batch import check_batch, iter_batches, with_base_offset


@dataclass
class FakeLog:
    batches: list[bytes] = field(default_factory=list)
    leo: int = 0
    hw: int = 0
    log_start: int = 0
    hold_hw: bool = False
    """Keep the high watermark where it is (followers "lagging")."""
    sequences: dict[tuple[int, int], int] = field(default_factory=dict)
    """(producer id, base sequence) -> base offset it was written at."""
    next_sequences: dict[int, int] = field(default_factory=dict)
    """Producer id -> the sequence after its last record here."""
    grew: asyncio.Event = field(default_factory=asyncio.Event)

    def gap(self, body: bytes) -> int | None:
        """The sequence expected when the first batch of ``body`` (a produce request's
        batches) leaves a gap after its producer's last record here; None when it does
        not (or its producer is unknown here)."""
        header = next(iter_batches(body)).header
        expected = self.next_sequences.get(header.producer_id)
        if not header.producer_id or expected is None or header.base_sequence <= expected:
            return None
        return expected

    def lose_last(self, count: int = 1) -> None:
        """Forget the last ``count`` batches, as a new leader that never got them."""
        kept = self.batches[: len(self.batches) - count]
        self.batches, self.sequences, self.next_sequences = [], {}, {}
        self.leo = self.hw = 0
        for batch in kept:
            self.append(batch)

    def append(self, batch: bytes) -> tuple[int, bool]:
        header = check_batch(batch)
        seen = self.sequences.get((header.producer_id, header.base_sequence))
        if header.producer_id and seen is not None:
            return seen, True
        base = self.leo
        self.batches.append(with_base_offset(batch, base))
        self.leo += header.record_count
        if not self.hold_hw:
            self.hw = self.leo
        if header.producer_id:
            self.sequences[(header.producer_id, header.base_sequence)] = base
            self.next_sequences[header.producer_id] = header.base_sequence + header.record_count
        self.grew.set()
        self.grew = asyncio.Event()
        return base, False

    def append_request(self, body: bytes) -> tuple[int, bool]:
        """Append a produce request's batches: the first one's offset, and whether every
        one was a duplicate."""
        written = [self.append(bytes(raw.data)) for raw in iter_batches(body)]
        return written[0][0], all(duplicate for _, duplicate in written)

    def read(self, offset: int, max_bytes: int, limit: int) -> bytes:
        out = b""
        for batch in self.batches:
            for raw in iter_batches(batch):
                header = raw.header
                if header.next_offset <= offset or header.next_offset > limit:
                    continue
                if out and len(out) + header.size > max_bytes:
                    return out
                out += bytes(raw.data)
        return out


class FakeSpu:
    """One SPU's public port on 127.0.0.1; start with ``async with``."""

    def __init__(self, spu_id: int) -> None:
        self.spu_id = spu_id
        self.logs: dict[tuple[str, int], FakeLog] = {}
        self.not_leader: dict[tuple[str, int], tuple[int | None, str | None]] = {}
        """Partitions this SPU refuses, with the leader it names (id, address)."""
        self.errors: list[ErrorCode] = []
        """Codes to answer the next produce requests with, one each, before serving."""
        self.drop_after_write = 0
        """Produce requests to write and then answer by closing the connection."""
        self.answer_delay = 0.0
        """Seconds each produce answer waits before it is sent (in order): requests sent
        meanwhile are in flight together."""
        self.unanswered = 0
        self.most_unanswered = 0
        """Produce requests read and not yet answered, now and at most."""
        self.requests: list[Any] = []
        self.address = ""
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()

    def log(self, topic: str, partition: int) -> FakeLog:
        return self.logs.setdefault((topic, partition), FakeLog())

    async def __aenter__(self) -> FakeSpu:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = f"{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop listening and drop every connection (as a killed SPU would)."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._connections):
                writer.close()
            for handler in list(self._handlers):
                handler.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        decoder = request_decoder()
        try:
            while data := await reader.read(65536):
                for header, body in decoder.feed(data):
                    if not await self._answer(header, body, writer):
                        return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(writer)
            self._handlers.discard(handler)
            writer.close()

    async def _answer(self, header: Any, body: bytes, writer: asyncio.StreamWriter) -> bool:
        self.requests.append(header)
        if isinstance(header, MalformedHeader):
            return False
        key = (header.topic, header.partition)
        if key in self.not_leader:
            leader, address = self.not_leader[key]
            error = DataError(
                code=ErrorCode.NOT_LEADER,
                message=f"spu {self.spu_id} does not lead {key}",
                leader=leader,
                leader_address=address,
            )
            if isinstance(header, ProduceRequest):
                self._answer_produce(writer, ProduceResponse(id=header.id, error=error))
            else:
                writer.writelines(encode_frame(FetchResponse(id=header.id, error=error)))
            return True
        if isinstance(header, ProduceRequest):
            return await self._produce(header, body, writer)
        assert isinstance(header, FetchRequest)
        await self._fetch(header, writer)
        return True

    async def _produce(
        self, request: ProduceRequest, body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        if self.errors:
            code = self.errors.pop(0)
            if code is ErrorCode.TIMEOUT:  # written, not committed in time
                self.log(request.topic, request.partition).append_request(body)
            error = DataError(code=code, message=f"told to answer {code.value}")
            self._answer_produce(writer, ProduceResponse(id=request.id, error=error))
            return True
        log = self.log(request.topic, request.partition)
        expected = log.gap(body)
        if expected is not None:
            error = DataError(
                code=ErrorCode.OUT_OF_SEQUENCE,
                message=f"expected base sequence {expected}; nothing was written",
            )
            self._answer_produce(writer, ProduceResponse(id=request.id, error=error))
            return True
        base, duplicate = log.append_request(body)
        if self.drop_after_write:
            self.drop_after_write -= 1
            return False
        assert request.acks in (Acks.LEADER, Acks.ALL)
        answer = ProduceResponse(id=request.id, base_offset=base, duplicate=duplicate)
        self._answer_produce(writer, answer)
        return True

    def _answer_produce(self, writer: asyncio.StreamWriter, answer: ProduceResponse) -> None:
        if self.answer_delay <= 0:
            writer.writelines(encode_frame(answer))
            return
        self.unanswered += 1
        self.most_unanswered = max(self.most_unanswered, self.unanswered)

        def send() -> None:
            self.unanswered -= 1
            if not writer.is_closing():
                writer.writelines(encode_frame(answer))

        asyncio.get_running_loop().call_later(self.answer_delay, send)

    async def _fetch(self, request: FetchRequest, writer: asyncio.StreamWriter) -> None:
        log = self.log(request.topic, request.partition)
        committed = request.isolation is Isolation.COMMITTED

        def limit() -> int:
            return log.hw if committed else log.leo

        if request.offset < log.log_start or request.offset > log.leo:
            error = DataError(code=ErrorCode.OFFSET_OUT_OF_RANGE, message="out of range")
            answer = FetchResponse(
                id=request.id, hw=log.hw, leo=log.leo, log_start=log.log_start, error=error
            )
            writer.writelines(encode_frame(answer))
            return
        if request.offset >= limit() and request.wait_ms:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(request.wait_ms / 1000):
                    while request.offset >= limit():
                        await log.grew.wait()
        body = log.read(request.offset, request.max_bytes, limit())
        answer = FetchResponse(id=request.id, hw=log.hw, leo=log.leo, log_start=log.log_start)
        writer.writelines(encode_frame(answer, body))


def partition_object(
    topic: str, index: int, leader: int, replicas: Iterable[int] = ()
) -> Partition:
    return Partition(
        meta=ObjectMeta(key=f"{topic}-{index}"),
        spec=PartitionSpec(leader=leader, replicas=[leader, *replicas]),
        status=PartitionStatus(),
    )


def spu_object(spu_id: int, public: str) -> Spu:
    host, port = public.rsplit(":", 1)
    return Spu(
        meta=ObjectMeta(key=f"custom-spu-{spu_id}"),
        spec=SpuSpec(
            id=spu_id,
            public_endpoint=Endpoint(host=host, port=int(port)),
            private_endpoint=Endpoint(host=host, port=1),
        ),
        status=SpuStatus(),
    )


class FakeSc:
    """The SC's public API as the client's metadata sees it: lists and a watch."""

    def __init__(self) -> None:
        self.partitions: dict[str, Partition] = {}
        self.spus: dict[str, Spu] = {}
        self.available = True
        self.lists = 0
        self._watchers: list[asyncio.Queue[WatchBatch]] = []

    def set_partition(self, topic: str, index: int, leader: int, *, announce: bool = True) -> None:
        partition = partition_object(topic, index, leader)
        self.partitions[partition.key] = partition
        if announce:
            self._announce(WatchBatch(Kind.PARTITION, False, (partition,), (), 1, 1))

    def set_spu(self, spu: FakeSpu | tuple[int, str]) -> None:
        spu_id, address = (spu.spu_id, spu.address) if isinstance(spu, FakeSpu) else spu
        obj = spu_object(spu_id, address)
        self.spus[obj.key] = obj
        self._announce(WatchBatch(Kind.SPU, False, (obj,), (), 1, 1))

    async def list_partitions(self, topic: str | None = None) -> list[Partition]:
        self._check()
        self.lists += 1
        return [p for p in self.partitions.values() if topic is None or p.key.startswith(topic)]

    async def list_spus(self) -> list[Spu]:
        self._check()
        return list(self.spus.values())

    def watch(
        self,
        kinds: Iterable[Kind | str] | None = None,
        *,
        idle_timeout: float = 60.0,
        heartbeats: bool = False,
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[WatchBatch]]:
        return self._watch()

    @asynccontextmanager
    async def _watch(self) -> AsyncIterator[AsyncIterator[WatchBatch]]:
        self._check()
        queue: asyncio.Queue[WatchBatch] = asyncio.Queue()
        queue.put_nowait(
            WatchBatch(Kind.PARTITION, True, tuple(self.partitions.values()), (), 1, 1)
        )
        queue.put_nowait(WatchBatch(Kind.SPU, True, tuple(self.spus.values()), (), 1, 1))
        self._watchers.append(queue)

        async def batches() -> AsyncIterator[WatchBatch]:
            while True:
                batch = await queue.get()
                self._check()
                yield batch

        try:
            yield batches()
        finally:
            self._watchers.remove(queue)

    def _announce(self, batch: WatchBatch) -> None:
        for queue in self._watchers:
            queue.put_nowait(batch)

    def _check(self) -> None:
        if not self.available:
            raise Unreachable("no SC replica could be reached: fake SC is down")


class StandIns(NamedTuple):
    one: FakeSpu
    """SPU 5001."""
    two: FakeSpu
    """SPU 5002."""
    sc: FakeSc
    """Knows both SPUs; no partitions until a test sets them."""
    metadata: ClusterMetadata
    """Started, reading ``sc``."""


@asynccontextmanager
async def stand_ins() -> AsyncIterator[StandIns]:
    """Two fake SPUs, a fake SC that knows them, and client metadata reading it."""
    async with FakeSpu(5001) as one, FakeSpu(5002) as two:
        sc = FakeSc()
        sc.set_spu(one)
        sc.set_spu(two)
        metadata = ClusterMetadata(sc, min_refresh_interval=0.01)
        await metadata.start()
        try:
            yield StandIns(one, two, sc, metadata)
        finally:
            await metadata.close()
