"""The admin client's failover, redirects and errors against stand-in servers on
loopback, and how it finds the cluster."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from ha_sc.client import AdminClient, ApiError, NoEndpoints, Unreachable, find_endpoints
from ha_sc.client.discovery import cluster_file
from ha_sc.client.transport import base_url
from ha_sc.model import CustomSpuSpec, Endpoint

DEAD = "127.0.0.1:1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class StandIn:
    """A loopback server answering every request with ``handler``; counts hits."""

    def __init__(self, handler: Handler) -> None:
        self.hits = 0
        self._handler = handler
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        self.address = ""

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        return await self._handler(request)

    async def __aenter__(self) -> StandIn:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.address = f"{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


def answer(status: int, doc: object, **headers: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(doc, status=status, headers=headers)

    return handler


EMPTY = {"items": [], "revision": 1}
SPU = CustomSpuSpec(
    id=1, public_endpoint=Endpoint(host="h", port=1), private_endpoint=Endpoint(host="h", port=2)
)


@pytest.fixture
async def healthy() -> AsyncIterator[StandIn]:
    async with StandIn(answer(200, EMPTY)) as server:
        yield server


async def test_reads_pass_over_dead_and_unsynced_replicas(healthy: StandIn) -> None:
    async with StandIn(answer(503, {"error": "not synced", "field": None})) as unsynced:
        async with AdminClient([DEAD, unsynced.address, healthy.address]) as admin:
            assert await admin.list_topics() == []
            assert await admin.list_spus() == []
        assert unsynced.hits == 1  # the replica that answered is asked first next time
    assert healthy.hits == 2


async def test_reads_report_the_last_refusal() -> None:
    async with (
        StandIn(answer(503, {"error": "not synced", "field": None})) as unsynced,
        AdminClient([unsynced.address, DEAD]) as admin,
    ):
        with pytest.raises(ApiError) as refused:
            await admin.list_topics()
    assert (refused.value.status, refused.value.message) == (503, "not synced")


async def test_no_replica_reachable() -> None:
    async with AdminClient([DEAD, "127.0.0.1:2"], timeout=1) as admin:
        with pytest.raises(Unreachable) as unreachable:
            await admin.list_spus()
    assert unreachable.value.message.startswith("no SC replica could be reached: ")
    assert "127.0.0.1:2" in unreachable.value.message


async def test_a_server_error_carries_its_message_and_field() -> None:
    async with (
        StandIn(answer(400, {"error": "id: bad", "field": "id"})) as server,
        AdminClient([server.address]) as admin,
    ):
        with pytest.raises(ApiError) as refused:
            await admin.register_spu(SPU)
    assert (refused.value.status, refused.value.message, refused.value.field) == (
        400,
        "id: bad",
        "id",
    )
    assert server.hits == 1  # a refusal is not retried elsewhere


async def test_writes_follow_the_redirect_to_the_leader() -> None:
    spu = {
        "name": "custom-spu-1",
        "spec": {**SPU.model_dump(mode="json", exclude_none=True), "spu_type": "custom"},
        "status": {"resolution": "Init"},
        "meta": {"revision": 3, "create_revision": 3, "owner": None},
    }
    seen: list[dict[str, object]] = []

    async def leader_handler(request: web.Request) -> web.StreamResponse:
        seen.append(await request.json())
        return web.json_response(spu, status=201)

    async with StandIn(leader_handler) as leader:

        async def standby_handler(request: web.Request) -> web.StreamResponse:
            location = f"http://{leader.address}{request.rel_url}"
            return web.json_response(
                {"error": "standby"}, status=307, headers={"Location": location}
            )

        async with StandIn(standby_handler) as standby, AdminClient([standby.address]) as admin:
            registered = await admin.register_spu(SPU)
    assert registered.key == "custom-spu-1"
    assert seen[0]["name"] == "custom-spu-1"
    assert seen[0]["id"] == 1


async def test_a_write_redirected_to_a_dead_leader_is_retried_until_the_deadline() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        location = f"http://{DEAD}{request.rel_url}"
        return web.json_response({"error": "standby"}, status=307, headers={"Location": location})

    async with StandIn(handler) as standby, AdminClient([standby.address], timeout=0.6) as admin:
        started = time.monotonic()
        with pytest.raises(Unreachable):
            await admin.delete_topic("orders")
        assert time.monotonic() - started >= 0.5
    assert standby.hits > 1


async def test_a_write_whose_connection_drops_is_sent_again_with_the_same_key() -> None:
    keys: list[str | None] = []

    async def drop_first(request: web.Request) -> web.StreamResponse:
        keys.append(request.headers.get("Idempotency-Key"))
        if len(keys) == 1:
            assert request.transport is not None
            request.transport.close()
            await asyncio.sleep(0.05)
        return web.json_response({"name": "orders", "deleted": True})

    async with StandIn(drop_first) as leader, AdminClient([leader.address]) as admin:
        await admin.delete_topic("orders")
    assert len(keys) == 2
    assert keys[0] is not None and keys[0] == keys[1]


class Frozen:
    """A loopback listener that accepts connections and never answers (a SIGSTOPped
    replica: the kernel still completes the handshake)."""

    def __init__(self) -> None:
        self.address = ""
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)

    async def __aenter__(self) -> Frozen:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = f"{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()


async def test_a_frozen_replica_does_not_hold_up_reads(healthy: StandIn) -> None:
    async with Frozen() as frozen, AdminClient([frozen.address, healthy.address]) as admin:
        started = time.monotonic()
        assert await admin.list_topics() == []
        assert await admin.list_spus() == []
        elapsed = time.monotonic() - started
    assert healthy.hits == 2
    assert elapsed < 5  # well below the 10 s call timeout that a sequential client waits out


async def test_a_write_goes_around_a_frozen_replica_and_remembers_the_leader() -> None:
    hits: list[str] = []

    async def leader_handler(request: web.Request) -> web.StreamResponse:
        hits.append(request.headers.get("Idempotency-Key", ""))
        return web.json_response({"name": "orders", "deleted": True})

    async with Frozen() as frozen, StandIn(leader_handler) as leader:

        async def standby_handler(request: web.Request) -> web.StreamResponse:
            location = f"http://{leader.address}{request.rel_url}"
            return web.json_response(
                {"error": "standby"}, status=307, headers={"Location": location}
            )

        async with (
            StandIn(standby_handler) as standby,
            AdminClient([frozen.address, standby.address], timeout=30) as admin,
        ):
            started = time.monotonic()
            await admin.delete_topic("a")
            await admin.delete_topic("b")
            elapsed = time.monotonic() - started
        assert standby.hits == 1  # the second write went straight to the known leader
    assert len(hits) == 2 and hits[0] != hits[1]  # one key per call
    assert elapsed < 5


async def test_a_frozen_leader_is_left_for_the_one_the_standbys_name() -> None:
    async with Frozen() as old_leader, StandIn(answer(200, {"deleted": True})) as new_leader:
        pointing = {"to": old_leader.address}

        async def standby_handler(request: web.Request) -> web.StreamResponse:
            location = f"http://{pointing['to']}{request.rel_url}"
            return web.json_response(
                {"error": "standby"}, status=307, headers={"Location": location}
            )

        async with (
            StandIn(standby_handler) as standby,
            AdminClient([old_leader.address, standby.address], timeout=30) as admin,
        ):
            asyncio.get_running_loop().call_later(
                0.8, pointing.__setitem__, "to", new_leader.address
            )  # the lease of the frozen leader runs out; a new one is elected
            started = time.monotonic()
            await admin.delete_topic("orders")
            elapsed = time.monotonic() - started
    assert new_leader.hits == 1
    assert elapsed < 6


async def test_a_malformed_answer_is_an_error() -> None:
    async def garbage(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>", content_type="text/html")

    async with StandIn(garbage) as server, AdminClient([server.address]) as admin:
        with pytest.raises(ApiError) as malformed:
            await admin.list_topics()
    assert malformed.value.status == 502


async def test_a_watch_reconnects_and_syncs_again() -> None:
    connections = 0

    async def stream(request: web.Request) -> web.StreamResponse:
        nonlocal connections
        connections += 1
        response = web.StreamResponse()
        await response.prepare(request)
        line = {
            "kind": "spus",
            "full_sync": True,
            "updates": [],
            "deletes": [],
            "leader_epoch": connections,
            "revision": 1,
        }
        await response.write(json.dumps(line).encode() + b"\n")
        return response  # the stream ends: the client reconnects

    async with (
        StandIn(stream) as server,
        AdminClient([server.address]) as admin,
        admin.watch(["spus"]) as batches,
    ):
        epochs = [(await anext(batches)).leader_epoch for _ in range(2)]
    assert epochs == [1, 2]


# finding the cluster


def test_explicit_endpoints_win(tmp_path: Path) -> None:
    env = {"HA_SC_ENDPOINTS": "a:1", "HA_SC_DIR": str(tmp_path)}
    assert find_endpoints(["x:1", "y:2"], environ=env) == ["x:1", "y:2"]
    assert find_endpoints([], environ=env) == ["a:1"]


def test_the_cluster_file_gives_the_public_addresses(tmp_path: Path) -> None:
    env = {"HA_SC_DIR": str(tmp_path)}
    doc = {
        "replicas": [
            {"id": "sc-1", "public": "127.0.0.1:9003", "private": "127.0.0.1:9004", "pid": 1},
            {"id": "sc-2", "public": "127.0.0.1:9013", "private": "127.0.0.1:9014", "pid": 2},
        ],
        "spus": [],
    }
    cluster_file(env).write_text(json.dumps(doc))
    assert find_endpoints(environ=env) == ["127.0.0.1:9003", "127.0.0.1:9013"]


def test_a_broken_cluster_file_is_named(tmp_path: Path) -> None:
    env = {"HA_SC_DIR": str(tmp_path)}
    cluster_file(env).write_text('{"replicas": "no"}')
    with pytest.raises(NoEndpoints, match="has no 'replicas' list"):
        find_endpoints(environ=env)


def test_nothing_given_says_how_to_point_at_a_cluster(tmp_path: Path) -> None:
    with pytest.raises(NoEndpoints) as missing:
        find_endpoints(environ={"HA_SC_DIR": str(tmp_path)})
    message = str(missing.value)
    assert "--sc HOST:PORT" in message
    assert "HA_SC_ENDPOINTS" in message
    assert str(tmp_path / "cluster.json") in message


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [("h:1", "http://h:1/"), ("http://h:2", "http://h:2/"), ("https://h:3/x", "https://h:3/")],
)
def test_base_urls(endpoint: str, url: str) -> None:
    assert str(base_url(endpoint)) == url


@pytest.mark.parametrize("endpoint", ["ftp://h:1", "h", "h:port"])
def test_bad_endpoints(endpoint: str) -> None:
    with pytest.raises(ValueError):
        base_url(endpoint)


async def test_a_watch_passes_over_a_frozen_replica() -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        line = {"kind": "spus", "full_sync": True, "updates": [], "deletes": [], "revision": 1}
        await response.write(json.dumps({**line, "leader_epoch": 4}).encode() + b"\n")
        await asyncio.sleep(0.2)
        return response

    async with (
        Frozen() as frozen,
        StandIn(stream) as server,
        AdminClient([frozen.address, server.address], timeout=30) as admin,
        admin.watch(["spus"], idle_timeout=30) as batches,
    ):
        batch = await asyncio.wait_for(anext(batches), 10)
    assert batch.leader_epoch == 4


async def test_a_delete_repeated_after_an_unknown_outcome_accepts_not_found() -> None:
    attempts = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal attempts
        attempts += 1
        if attempts == 1:  # applied, but the answer is lost (a leader that then failed)
            assert request.transport is not None
            request.transport.write(b"HTTP/1.1 garbled\r\n\r\n")
            request.transport.close()
            await asyncio.sleep(0.05)
        return web.json_response({"error": "topic 'orders' not found"}, status=404)

    async with StandIn(handler) as leader, AdminClient([leader.address]) as admin:
        await admin.delete_topic("orders")
        with pytest.raises(ApiError) as missing:
            await admin.delete_topic("orders")  # a plain 404 stays an error
    assert missing.value.status == 404
    assert attempts == 3
