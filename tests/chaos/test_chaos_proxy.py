"""The fault-injecting proxy on loopback: each fault does what it says and heals."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import AsyncIterator

import pytest

from chaos.proxy import CLEAR, Direction, FaultProxy, Impairment


@pytest.fixture
async def echo() -> AsyncIterator[str]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    yield f"{host}:{port}"
    server.close()
    await server.wait_closed()


@pytest.fixture
async def proxy(echo: str) -> AsyncIterator[FaultProxy]:
    started = await FaultProxy(echo, name="test").start()
    yield started
    await started.close()


async def round_trip(
    address: str, payload: bytes = b"ping", timeout: float = 2.0
) -> tuple[bytes, float]:
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        started = time.monotonic()
        writer.write(payload)
        await writer.drain()
        async with asyncio.timeout(timeout):
            data = await reader.readexactly(len(payload))
        return data, time.monotonic() - started
    finally:
        writer.close()


async def test_bytes_pass_through_and_connections_are_counted(proxy: FaultProxy) -> None:
    assert (await round_trip(proxy.address))[0] == b"ping"
    assert proxy.connections == 1


async def test_a_one_way_blackhole_holds_bytes_until_healed(proxy: FaultProxy) -> None:
    proxy.blackhole(Direction.DOWNSTREAM)
    assert proxy.blackholed == {Direction.DOWNSTREAM}
    with pytest.raises(TimeoutError):
        await round_trip(proxy.address, timeout=0.3)
    proxy.heal()
    assert proxy.blackholed == set()
    assert (await round_trip(proxy.address))[0] == b"ping"


async def test_delay_is_pipelined_and_keeps_order(proxy: FaultProxy) -> None:
    """A busy delayed link is as slow as an idle one: each of ten messages sent 0.1 s
    apart through 0.3 s upstream arrives about 0.3 s after it was sent (not behind the
    delay of the one before), and in order."""
    proxy.delay(0.3, direction=Direction.UPSTREAM)
    host, port = proxy.address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    latencies = []
    try:
        sent: list[float] = []

        async def send() -> None:
            for n in range(10):
                sent.append(time.monotonic())
                writer.write(b"%d;" % n)
                await writer.drain()
                await asyncio.sleep(0.1)

        sender = asyncio.create_task(send(), name="test-sender")
        async with asyncio.timeout(5.0):
            for n in range(10):
                assert await reader.readuntil(b";") == b"%d;" % n
                latencies.append(time.monotonic() - sent[n])
        await sender
    finally:
        writer.close()
    assert min(latencies) >= 0.29, latencies
    assert max(latencies) < 0.45, latencies


async def test_delay_applies_to_the_chosen_direction_only(proxy: FaultProxy) -> None:
    proxy.delay(0.2, direction=Direction.UPSTREAM)
    assert proxy.impairment(Direction.DOWNSTREAM) == CLEAR
    _, took = await round_trip(proxy.address)
    assert took >= 0.2
    proxy.heal()
    assert proxy.impairment(Direction.UPSTREAM) == CLEAR


async def test_reset_cuts_open_connections(proxy: FaultProxy) -> None:
    host, port = proxy.address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"x")
    await reader.readexactly(1)
    proxy.reset()
    async with asyncio.timeout(2.0):
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await reader.readexactly(1)
    writer.close()


def test_loss_is_a_delay_that_doubles_with_each_loss_in_a_row() -> None:
    rng = random.Random(7)
    assert Impairment().wait(rng) == 0.0
    assert Impairment(delay=0.05).wait(rng) == 0.05
    always = Impairment(drop=1.0, rto=0.1)
    assert always.wait(rng) == pytest.approx(0.1 * (2**6 - 1))  # gives up doubling
    waits = [Impairment(drop=0.5, rto=0.1).wait(rng) for _ in range(1000)]
    assert 0.4 < sum(1 for w in waits if w == 0.0) / len(waits) < 0.6


async def test_closing_while_dialling_a_target_that_never_accepts_closes_the_client() -> None:
    """A stopped target whose backlog is full leaves the proxy dialling; closing the
    proxy then must close the client's side too (not leave it open for the collector)."""
    target = socket.socket()
    target.bind(("127.0.0.1", 0))
    target.listen(0)
    address = target.getsockname()
    fillers = []
    for _ in range(4):  # fill the backlog: further SYNs are dropped, connects hang
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(address)
        fillers.append(filler)
    stuck = await FaultProxy(f"{address[0]}:{address[1]}", name="stuck").start()
    host, port = stuck.address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"hello")
        await writer.drain()
        await asyncio.sleep(0.3)  # the proxy has accepted and is dialling the target
        await stuck.close()
        async with asyncio.timeout(5.0):
            assert await reader.read() == b""
    finally:
        writer.close()
        for sock in (*fillers, target):
            sock.close()
