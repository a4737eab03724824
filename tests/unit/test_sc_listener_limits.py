"""What one peer can make an SC replica hold: the private (SPU) port's connection caps
and the public API's body limit, on real loopback sockets in this process."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from ha_sc.api import ApiServer
from ha_sc.protocol import FullSync, Register, parse_address
from ha_sc.sc.listener_limits import ListenerLimits
from ha_sc.sc.spu_server import SpuServer
from ha_sc.sc.tuning import ScTuning
from tests.unit.test_api_handlers import Replica, topic_body
from tests.unit.test_spu_server import ME, Client, View, view  # noqa: F401 (a fixture)
from tests.waiting import eventually


@contextlib.asynccontextmanager
async def clients(server: SpuServer) -> AsyncIterator[list[Client]]:
    opened: list[Client] = []
    try:
        yield opened
    finally:
        for client in opened:
            await client.close()


async def open_client(server: SpuServer, opened: list[Client]) -> Client:
    host, port = parse_address(server.address)
    client = Client(*await asyncio.open_connection(host, port))
    opened.append(client)
    return client


async def test_the_private_port_refuses_a_host_past_its_connection_cap(
    view: View,  # noqa: F811 (the fixture imported above)
    caplog: pytest.LogCaptureFixture,
) -> None:
    view.win()
    server = SpuServer(
        view, "127.0.0.1:0", health_timeout=5.0, keepalive_interval=0.1, max_connections_per_peer=2
    )
    await server.start()
    try:
        async with clients(server) as opened:
            registered = await open_client(server, opened)
            await registered.send(Register(spu_id=ME))
            assert isinstance(await registered.receive(), FullSync)
            await open_client(server, opened)  # silent, within the health timeout
            with caplog.at_level(logging.WARNING, logger="ha_sc.sc.spu"):
                for _ in range(5):
                    third = await open_client(server, opened)
                    assert await third.until_closed(timeout=3.0) == []
            refusals = [r for r in caplog.records if "refused a connection" in r.getMessage()]
            assert len(refusals) == 1
            assert "max_connections_per_peer" in refusals[0].getMessage()
            # the registered SPU is served on
            assert await registered.receive() is not None
            # a served connection that ends gives its slot back
            await registered.close()

            async def reconnects() -> bool:
                client = await open_client(server, opened)
                await client.send(Register(spu_id=ME))
                return isinstance(await client.receive(), FullSync)

            assert await eventually(reconnects, what="a slot given back")
    finally:
        await server.stop()


async def test_an_api_body_over_the_limit_is_413_and_the_api_goes_on() -> None:
    replica = Replica()
    replica.server = ApiServer(replica, "127.0.0.1:0", ready=lambda: True, max_body=64 * 1024)
    await replica.server.start()
    try:
        replica.lead()
        url = f"{replica.base}/api/v1/topics"
        async with aiohttp.ClientSession() as http:
            huge = b'{"name": "' + b"x" * (100 << 10) + b'"}'
            async with http.post(
                url, data=io.BytesIO(huge), headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status == 413
            # a body within the limit is read (and judged on its content)
            within = {**topic_body("Not A Name"), "padding": "y" * (32 << 10)}
            async with http.post(url, json=within) as response:
                assert response.status in (400, 422), await response.text()
            async with http.get(url) as response:
                assert response.status == 200
    finally:
        await replica.server.stop()
        await replica.supervisor.stop()


def test_the_listener_limits_are_part_of_the_settings_tree() -> None:
    tuning = ScTuning.model_validate({"listeners": {"api_max_body_bytes": 4096}})
    assert tuning.listeners == ListenerLimits(api_max_body_bytes=4096)
    assert any("api_max_body_bytes" in line for line in tuning.summary())


async def test_a_host_past_its_open_api_requests_is_answered_429_until_one_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    replica = Replica()
    replica.server = ApiServer(
        replica, "127.0.0.1:0", ready=lambda: True, watch_heartbeat=0.1, max_requests_per_peer=2
    )
    await replica.server.start()
    try:
        async with aiohttp.ClientSession() as http:
            watch = f"{replica.base}/api/v1/watch?kinds=spus"
            topics = f"{replica.base}/api/v1/topics"
            async with http.get(watch) as first, http.get(watch) as second:
                assert (first.status, second.status) == (200, 200)
                with caplog.at_level(logging.WARNING, logger="ha_sc.api"):
                    for _ in range(5):
                        async with http.get(topics) as refused:
                            assert refused.status == 429
                refusals = [r for r in caplog.records if "refused a request" in r.getMessage()]
                assert len(refusals) == 1

            # the streams ended: their host may ask again
            async def answered() -> bool:
                async with http.get(topics) as response:
                    return response.status == 200

            assert await eventually(answered, what="a request answered once the streams ended")
    finally:
        await replica.server.stop()
        await replica.supervisor.stop()


async def test_a_create_whose_client_gave_up_frees_its_request_slot() -> None:
    # A create waits for provisioning up to its ?timeout=; nothing provisions here, so
    # each would wait the whole 300 s. A client that drops such an attempt (the client
    # SDK drops the oldest of its hedged attempts) must not keep its host's slot.
    replica = Replica()
    replica.server = ApiServer(
        replica, "127.0.0.1:0", ready=lambda: True, watch_heartbeat=0.1, max_requests_per_peer=2
    )
    await replica.server.start()
    try:
        replica.lead()
        async with aiohttp.ClientSession() as http:
            create = f"{replica.base}/api/v1/topics?timeout=300"
            for name in ("first", "second"):
                with contextlib.suppress(TimeoutError):
                    async with http.post(
                        create, json=topic_body(name), timeout=aiohttp.ClientTimeout(total=0.5)
                    ):
                        pass
            topics = f"{replica.base}/api/v1/topics"

            async def answered() -> bool:
                async with http.get(topics) as response:
                    return response.status == 200

            assert await eventually(
                answered, what="a request answered once the creates were dropped"
            )
    finally:
        await replica.server.stop()
        await replica.supervisor.stop()


async def test_an_api_body_sent_too_slowly_is_408_and_its_connection_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    replica = Replica()
    replica.server = ApiServer(replica, "127.0.0.1:0", ready=lambda: True, body_timeout=0.3)
    await replica.server.start()
    try:
        replica.lead()
        host, port = parse_address(replica.server.address)
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(
                b"POST /api/v1/topics HTTP/1.1\r\nHost: sc\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n" + b'{"name": "or'  # and nothing more
            )
            async with asyncio.timeout(10):
                answer = await reader.read()  # until the server closes
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert "the body did not arrive within 0.3 s" in caplog.text
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{replica.base}/api/v1/topics") as response,  # the API goes on
        ):
            assert response.status == 200
    finally:
        await replica.server.stop()
        await replica.supervisor.stop()
