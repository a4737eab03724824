"""A request whose client closed the connection, on a real site on loopback: the public
API cancels it, except the first request of an idempotency key, which runs to its end
so that the key's repeats get its outcome instead of doing the write again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from ha_sc.api.idempotency import HEADER, LEDGER, RequestLedger, idempotency_middleware
from ha_sc.http_site import HttpSite
from tests.waiting import eventually

WORK = 1.0
"""Seconds the handler's write takes; the client gives up long before."""


class Writes:
    def __init__(self) -> None:
        self.started = 0
        self.finished = 0
        self.cancelled = 0

    async def handle(self, _: web.Request) -> web.Response:
        self.started += 1
        try:
            await asyncio.sleep(WORK)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return web.json_response({"write": self.started}, status=201)


@contextlib.asynccontextmanager
async def site(writes: Writes) -> AsyncIterator[str]:
    app = web.Application(middlewares=[idempotency_middleware])
    app[LEDGER] = RequestLedger()
    app.router.add_post("/write", writes.handle)
    served = HttpSite(app, "127.0.0.1", 0, cancel_when_gone=True)
    address = await served.start()
    try:
        yield f"http://{address}/write"
    finally:
        await served.stop()


async def dropped(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
    with contextlib.suppress(TimeoutError):
        async with http.post(url, headers=headers, timeout=aiohttp.ClientTimeout(total=0.2)):
            pytest.fail("the write answered before its client gave up")


async def test_a_request_whose_client_left_is_cancelled() -> None:
    writes = Writes()
    async with site(writes) as url, aiohttp.ClientSession() as http:
        await dropped(http, url, {})
        await eventually(lambda: writes.cancelled == 1, what="the dropped request cancelled")
        assert writes.finished == 0


async def test_the_first_request_of_a_key_runs_on_and_its_repeat_gets_its_outcome() -> None:
    writes = Writes()
    async with site(writes) as url, aiohttp.ClientSession() as http:
        keyed = {HEADER: "create-orders-1"}
        await dropped(http, url, keyed)
        async with http.post(url, headers=keyed) as repeat:
            assert repeat.status == 201
            assert await repeat.json() == {"write": 1}
            assert repeat.headers.get("Idempotent-Replay") == "true"
        assert (writes.started, writes.finished, writes.cancelled) == (1, 1, 0)
