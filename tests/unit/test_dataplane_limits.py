"""What one peer can make an SPU data port hold: a real ``DataPort`` on loopback in this
process, serving through a fake dispatcher that answers at once (or never), and clients
on real sockets that misbehave: too many connections, nothing sent, half a frame,
pipelined requests whose answers they never read, frames too large or broken."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from ha_sc.protocol import parse_address
from ha_sc.protocol.admission import Admission, RefusalLog
from ha_sc.protocol.data import (
    MAX_DATA_FRAME,
    FetchRequest,
    FetchResponse,
    ReplicaFetchRequest,
    encode_frame,
)
from ha_sc.spu.dataplane.admission import PortLimits, RequestCaps, capped
from ha_sc.spu.dataplane.connection import HIGH_WATER
from ha_sc.spu.dataplane.listener import DataPort
from ha_sc.spu.dataplane.serving import Frame
from tests.data_client import RawDataClient
from tests.net import free_addresses
from tests.waiting import eventually

ANSWER_BYTES = 16 * 1024


@dataclass
class FakeDispatch:
    """Answers every request with ``ANSWER_BYTES`` at once, or holds it unanswered."""

    answer: bool = True
    requests: int = 0
    held: list[asyncio.Future[Frame]] = field(default_factory=list)

    def __call__(self, header: Any, body: bytes) -> asyncio.Future[Frame]:
        self.requests += 1
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        if self.answer:
            future.set_result((FetchResponse(id=header.id), b"x" * ANSWER_BYTES))
        else:
            self.held.append(future)
        return future


def limits(**changes: Any) -> PortLimits:
    base: dict[str, Any] = dict(
        max_connections=100, max_connections_per_peer=100, first_frame_timeout=30.0,
        max_in_flight=64, max_answer=1 << 20, max_send_buffer=256 << 20,
    )  # fmt: skip
    return PortLimits(**{**base, **changes})


@contextlib.asynccontextmanager
async def port(
    dispatch: FakeDispatch,
    port_limits: PortLimits,
    *,
    in_order: bool = True,
    tls: ssl.SSLContext | None = None,
    check_followers: bool = False,
) -> AsyncIterator[DataPort]:
    data_port = DataPort(
        "public" if in_order else "private",
        free_addresses(1)[0],
        lambda _host: dispatch,
        in_order=in_order,
        limits=port_limits,
        tls=tls,
        check_followers=check_followers,
    )
    serving = asyncio.create_task(data_port.serve(), name="data port under test")
    try:
        await asyncio.wait_for(data_port.bound.wait(), 10)
        yield data_port
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


def fetch(request_id: int) -> FetchRequest:
    return FetchRequest(id=request_id, topic="t", partition=0, offset=0)


async def answered(client: RawDataClient) -> bool:
    response, body = await client.request(fetch(client.next_id()))
    return isinstance(response, FetchResponse) and len(body) == ANSWER_BYTES


async def closed_by_server(address: str, send: bytes = b"", timeout: float = 10.0) -> bool:
    """Connect, send ``send``, and whether the server ends the connection within
    ``timeout`` (reading and dropping whatever it answers meanwhile)."""
    host, port_number = parse_address(address)
    reader, writer = await asyncio.open_connection(host, port_number)
    try:
        writer.write(send)
        async with asyncio.timeout(timeout):
            for _ in range(100_000):
                try:
                    if not await reader.read(1 << 16):
                        return True
                except ConnectionError:
                    return True
        return False
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def test_a_peer_past_its_connection_cap_is_refused_and_the_others_keep_working() -> None:
    async with port(FakeDispatch(), limits(max_connections_per_peer=2)) as data_port:
        first, second = RawDataClient(data_port.address), RawDataClient(data_port.address)
        async with first, second:
            assert await answered(first)
            assert await closed_by_server(data_port.address, fetch(1).model_dump_json().encode())
            assert await answered(second)
            assert data_port.admission.total == 2
        # the slots are given back when connections end
        await eventually(lambda: data_port.admission.total == 0, what="connections counted out")
        async with RawDataClient(data_port.address) as again:
            assert await answered(again)


async def test_the_port_refuses_connections_past_max_connections() -> None:
    async with (
        port(FakeDispatch(), limits(max_connections=1)) as data_port,
        RawDataClient(data_port.address) as only,
    ):
        assert await answered(only)
        assert await closed_by_server(data_port.address)
        assert await answered(only)


async def test_a_connection_that_sends_nothing_is_closed_after_the_frame_timeout() -> None:
    async with port(FakeDispatch(), limits(first_frame_timeout=0.3)) as data_port:
        assert await closed_by_server(data_port.address, timeout=10)


async def test_a_connection_stuck_in_a_partial_frame_is_closed() -> None:
    async with port(FakeDispatch(), limits(first_frame_timeout=0.3)) as data_port:
        whole = b"".join(encode_frame(fetch(1)))
        assert await closed_by_server(data_port.address, whole + whole[:7], timeout=10)


async def test_a_connection_idle_between_whole_frames_stays_open() -> None:
    async with (
        port(FakeDispatch(), limits(first_frame_timeout=0.3)) as data_port,
        RawDataClient(data_port.address) as client,
    ):
        assert await answered(client)
        await asyncio.sleep(0.9)  # three timeouts with no frame started
        assert await answered(client)


async def test_requests_in_flight_are_counted_per_frame_not_per_read() -> None:
    dispatch = FakeDispatch(answer=False)
    async with (
        port(dispatch, limits(max_in_flight=4)) as data_port,
        RawDataClient(data_port.address) as client,
    ):
        client.send_raw(b"".join(b"".join(encode_frame(fetch(i))) for i in range(1, 101)))
        await eventually(lambda: dispatch.requests >= 4, what="four requests handed on")
        await asyncio.sleep(0.2)  # a stream that ignored the cap would hand on all 100
        assert dispatch.requests == 4
        for held in dispatch.held:
            held.set_result((FetchResponse(id=0), b""))
        await eventually(lambda: dispatch.requests >= 8, what="four more handed on")


async def test_a_client_that_never_reads_cannot_make_the_port_buffer_its_answers() -> None:
    """20,000 pipelined fetches answered with 16 KiB each are 320 MiB of answers; the port
    hands on only what its send buffer and in-flight cap allow, then closes the
    connection once the client has read nothing for the frame timeout."""
    dispatch = FakeDispatch()
    async with port(dispatch, limits(first_frame_timeout=1.0, max_in_flight=64)) as data_port:
        host, port_number = parse_address(data_port.address)
        reader, writer = await asyncio.open_connection(host, port_number)
        try:
            requests = b"".join(b"".join(encode_frame(fetch(i))) for i in range(1, 20_001))
            writer.write(requests)
            with contextlib.suppress(ConnectionError):
                async with asyncio.timeout(10):
                    await writer.drain()
            await asyncio.sleep(2.5)  # past the frame timeout, never reading
            kernel_slack = 32 << 20  # loopback socket buffers on both sides
            assert dispatch.requests * ANSWER_BYTES <= HIGH_WATER + 64 * ANSWER_BYTES + kernel_slack
            assert dispatch.requests < 20_000
            await eventually(
                lambda: data_port.admission.total == 0, what="the stuck connection closed"
            )
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
        del reader


@pytest.mark.parametrize(
    "bad",
    [
        struct.pack(">II", MAX_DATA_FRAME + 1, 10),  # larger than any frame may be
        struct.pack(">II", 20, 100) + b"x" * 20,  # a header longer than its frame
    ],
    ids=["oversized", "malformed"],
)
async def test_a_bad_frame_closes_only_its_connection(bad: bytes) -> None:
    async with (
        port(FakeDispatch(), limits()) as data_port,
        RawDataClient(data_port.address) as bystander,
    ):
        assert await answered(bystander)
        assert await closed_by_server(data_port.address, bad)
        assert await answered(bystander)


def test_admission_counts_each_peer_and_gives_slots_back() -> None:
    admission = Admission(max_connections=3, max_connections_per_peer=2)
    assert admission.refusal("10.0.0.1") is None
    assert admission.refusal("10.0.0.1") is None
    refused = admission.refusal("10.0.0.1")
    assert refused is not None and "max_connections_per_peer" in refused
    assert admission.refusal("10.0.0.2") is None
    refused = admission.refusal("10.0.0.3")
    assert refused is not None and "max_connections" in refused
    admission.closed("10.0.0.1")
    assert admission.refusal("10.0.0.3") is None
    assert admission.total == 3


def test_a_refused_peer_is_logged_once_per_interval() -> None:
    refusals = RefusalLog(every=30.0)
    assert refusals.due("a", 0.0)
    assert not refusals.due("a", 10.0)
    assert refusals.due("b", 10.0)
    assert refusals.due("a", 30.0)


async def test_a_flood_of_refused_connections_is_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        port(FakeDispatch(), limits(max_connections_per_peer=1)) as data_port,
        RawDataClient(data_port.address) as holder,
    ):
        assert await answered(holder)
        with caplog.at_level(logging.WARNING, logger="ha_sc.spu.dataplane"):
            for _ in range(20):
                assert await closed_by_server(data_port.address)
    refusals = [r for r in caplog.records if "refused a connection" in r.getMessage()]
    assert len(refusals) == 1


Ask = Callable[[int, int], FetchRequest | ReplicaFetchRequest]


@pytest.mark.parametrize(
    "ask",
    [
        lambda size, wait: FetchRequest(
            id=1, topic="t", partition=0, offset=0, max_bytes=size, wait_ms=wait
        ),
        lambda size, wait: ReplicaFetchRequest(
            id=1, topic="t", partition=0, offset=0, follower=2, max_bytes=size, wait_ms=wait
        ),
    ],
    ids=["fetch", "replica_fetch"],
)
def test_a_fetch_ask_is_lowered_to_the_caps(ask: Ask) -> None:
    caps = RequestCaps(max_fetch_bytes=1000, max_wait_ms=500)
    lowered = capped(ask(1 << 30, 10**9), caps)
    assert (lowered.max_bytes, lowered.wait_ms) == (1000, 500)
    within = ask(10, 20)
    assert capped(within, caps) is within


async def test_unanswered_fetches_hold_the_answers_they_may_get_on_the_public_port() -> None:
    """Answers leave a public connection in request order, so a fetch behind a waiting
    one keeps its answer: the port counts each fetch's ask (capped at max_answer)
    against the connection's 64 MiB, and hands on no more than that covers."""
    dispatch = FakeDispatch(answer=False)
    big_ask = limits(max_in_flight=256, max_answer=8 << 20)
    async with (
        port(dispatch, big_ask) as data_port,
        RawDataClient(data_port.address) as client,
    ):
        asks = (
            FetchRequest(id=i, topic="t", partition=0, offset=0, max_bytes=1 << 30)
            for i in range(1, 101)
        )
        client.send_raw(b"".join(b"".join(encode_frame(ask)) for ask in asks))
        await eventually(lambda: dispatch.requests >= 8, what="eight fetches handed on")
        await asyncio.sleep(0.2)  # a port counting only request bodies hands on all 100
        assert dispatch.requests == 8


async def test_a_follower_that_reads_no_answers_is_closed_at_the_send_buffer_cap() -> None:
    """On the private port answers leave as they are ready, whatever the follower
    reads; past max_send_buffer bytes waiting, the connection is closed (long before
    the frame timeout)."""
    dispatch = FakeDispatch()
    capped_buffer = limits(max_send_buffer=1 << 20, first_frame_timeout=60.0)
    async with port(dispatch, capped_buffer, in_order=False) as data_port:
        host, port_number = parse_address(data_port.address)
        reader, writer = await asyncio.open_connection(host, port_number)
        try:
            writer.write(b"".join(b"".join(encode_frame(fetch(i))) for i in range(1, 5001)))
            await eventually(
                lambda: data_port.admission.total == 0, timeout=15, what="the follower cut off"
            )
            assert dispatch.requests < 5000
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
        del reader
