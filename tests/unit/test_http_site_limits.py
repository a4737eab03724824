"""What idle and slow clients may hold of an HTTP listener (the SC's public API, the
metrics ports): a real ``HttpSite`` on loopback, clients on real sockets that connect
too often, send nothing, send half a request's headers, or go quiet after a request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from ha_sc.http_guard import HttpLimits
from ha_sc.http_site import HttpSite
from ha_sc.protocol import parse_address
from ha_sc.protocol.admission import connection_guard
from ha_sc.sc.listener_limits import ListenerLimits
from tests.waiting import eventually

REQUEST = b"GET /ok HTTP/1.1\r\nHost: sc\r\n\r\n"
SLOW_HANDLER = 0.6
"""Seconds the /slow handler takes: longer than the short header timeout used here."""


async def ok(_: web.Request) -> web.Response:
    return web.Response(text="ok")


async def slow(_: web.Request) -> web.Response:
    await asyncio.sleep(SLOW_HANDLER)
    return web.Response(text="slow")


@contextlib.asynccontextmanager
async def site(limits: HttpLimits) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/slow", slow)
    served = HttpSite(app, "127.0.0.1", 0, guard=connection_guard("public API", limits))
    address = await served.start()
    try:
        yield address
    finally:
        await served.stop()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="ha_sc.http")
    return caplog


async def open_to(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = parse_address(address)
    return await asyncio.open_connection(host, port)


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = 10.0) -> bytes | None:
    """What the server sent until it closed the connection; None if it had not closed it
    within ``timeout``."""
    received = b""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            for _ in range(10_000):
                try:
                    data = await reader.read(1 << 16)
                except ConnectionError:
                    return received
                if not data:
                    return received
                received += data
    return None


async def answered(address: str, path: str = "/ok") -> bytes:
    reader, writer = await open_to(address)
    try:
        writer.write(REQUEST.replace(b"/ok", path.encode()))
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
        return head.split(b"\r\n", 1)[0]
    finally:
        writer.close()


async def served(address: str) -> bool:
    try:
        return await answered(address) == b"HTTP/1.1 200 OK"
    except (ConnectionError, asyncio.IncompleteReadError):
        return False


SHORT = HttpLimits(header_timeout=0.3, idle_timeout=0.5)


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    logs: pytest.LogCaptureFixture,
) -> None:
    async with site(SHORT) as address:
        reader, writer = await open_to(address)
        try:
            assert await closed_by_server(reader) == b""
        finally:
            writer.close()
        assert await answered(address) == b"HTTP/1.1 200 OK"  # others are served
    assert "public API: closed a connection from 127.0.0.1: no whole request headers" in logs.text


async def test_headers_sent_a_byte_at_a_time_are_cut_off() -> None:
    async with site(SHORT) as address:
        reader, writer = await open_to(address)
        try:
            sent = 0
            closed = asyncio.create_task(closed_by_server(reader), name="until closed")
            for byte in REQUEST[:-2]:  # never the last CRLF
                if closed.done():
                    break
                writer.write(bytes([byte]))
                sent += 1
                await asyncio.sleep(0.05)
            assert await closed == b""
            assert sent < len(REQUEST) - 2
        finally:
            writer.close()


async def test_a_connection_idle_after_its_request_is_closed_after_the_idle_timeout() -> None:
    async with site(SHORT) as address:
        reader, writer = await open_to(address)
        try:
            writer.write(REQUEST)
            got = await closed_by_server(reader)
            assert got is not None and got.startswith(b"HTTP/1.1 200 OK")
        finally:
            writer.close()


async def test_a_request_whose_headers_came_in_time_may_take_longer_to_answer() -> None:
    async with site(SHORT) as address:
        assert await answered(address, "/slow") == b"HTTP/1.1 200 OK"


async def test_a_host_past_its_connection_cap_is_closed_at_once_and_admitted_again_later(
    logs: pytest.LogCaptureFixture,
) -> None:
    limits = HttpLimits(max_connections_per_peer=2, header_timeout=30, idle_timeout=30)
    async with site(limits) as address:
        held = [await open_to(address) for _ in range(2)]
        reader, writer = await open_to(address)
        assert await closed_by_server(reader) == b""
        writer.close()
        for _, holder in held:
            holder.close()
        await eventually(lambda: served(address), what="room again once the others closed")
    assert "public API: refused a connection from 127.0.0.1: 127.0.0.1 already has 2" in logs.text


async def test_the_total_cap_holds_whatever_the_host() -> None:
    limits = HttpLimits(max_connections=1, header_timeout=30, idle_timeout=30)
    async with site(limits) as address:
        held_reader, held_writer = await open_to(address)
        reader, writer = await open_to(address)
        assert await closed_by_server(reader) == b""
        writer.close()
        held_writer.write(REQUEST)  # the admitted one is served
        async with asyncio.timeout(10):
            assert (await held_reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200 OK")
        held_writer.close()


def test_the_sc_settings_give_the_public_api_its_limits() -> None:
    limits = ListenerLimits(api_header_timeout=2.5, api_max_connections_per_peer=8)
    assert limits.api_connections() == HttpLimits(
        max_connections=4096, max_connections_per_peer=8, header_timeout=2.5, idle_timeout=60.0
    )


@pytest.mark.parametrize(
    "bad",
    [{"max_connections": 0}, {"max_connections_per_peer": 0}, {"header_timeout": 0}],
)
def test_limits_that_would_close_everything_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        HttpLimits(**bad)  # type: ignore[arg-type]
