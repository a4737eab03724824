"""The public API on two replicas over one KV: a leader running the controllers and a
standby, each with its own cache fed by its own dispatchers, each serving HTTP on
loopback. Clients and the CLI talk to them as they would to a real cluster."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import click
import pytest
from click.testing import CliRunner, Result

from election.guard import Guard
from election.term import Term
from ha_sc.api import ROUTES, ApiServer
from ha_sc.api.addresses import ReplicaAddresses
from ha_sc.api.replica_view import KnownLeader
from ha_sc.cli.partition import partition
from ha_sc.cli.spu_admin import spu_list, spu_register, spu_unregister
from ha_sc.cli.topic import topic
from ha_sc.client import AdminClient, ApiError
from ha_sc.controllers.loop import ControllerLoop
from ha_sc.controllers.writer import ActionWriter
from ha_sc.kv.memory import MemoryKv
from ha_sc.model import (
    CustomSpuSpec,
    Endpoint,
    Kind,
    PartitionResolution,
    SpuSpec,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    encode_value,
)
from ha_sc.store import GlobalStore, start_dispatchers
from ha_sc.tasks import Supervisor
from tests.waiting import eventually

SPUS = (5001, 5002, 5003)


class Replica:
    """One SC replica as its servers see it (a ReplicaView): own cache, shared KV."""

    def __init__(self, replica_id: str, kv: MemoryKv) -> None:
        self.replica_id = replica_id
        self.kv = kv
        self.cache = GlobalStore()
        self.supervisor = Supervisor()
        self.dispatchers = start_dispatchers(self.cache, kv, self.supervisor)
        self.current_term: Term | None = None
        self.known_leader: KnownLeader | None = None
        self.server = ApiServer(
            self,
            "127.0.0.1:0",
            provision_timeout=5.0,
            ready=lambda: all(d.ready.is_set() for d in self.dispatchers.values()),
            watch_heartbeat=0.2,
        )

    def term(self) -> Term | None:
        return self.current_term

    def leader(self) -> KnownLeader | None:
        return self.known_leader

    @property
    def address(self) -> str:
        return self.server.address

    async def stop(self) -> None:
        await self.server.stop()
        await self.supervisor.stop()


class Cluster:
    def __init__(self) -> None:
        self.kv = MemoryKv()
        self.leader = Replica("sc-a", self.kv)
        self.standby = Replica("sc-b", self.kv)
        self._controllers: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for spu_id in SPUS:
            spec = SpuSpec(
                id=spu_id,
                public_endpoint=Endpoint(host="127.0.0.1", port=spu_id),
                private_endpoint=Endpoint(host="127.0.0.1", port=spu_id + 1000),
            )
            await self.kv.create(Kind.SPU.value, f"spu-{spu_id}", encode_value(spec))
        for replica in (self.leader, self.standby):
            await replica.server.start()
        holder = self.kv.leases.acquire("sc", "sc-a")
        assert holder is not None
        term = Term(Guard("sc", holder.epoch), valid_until=time.monotonic() + 3600)
        self.leader.current_term = term
        known = KnownLeader(
            "sc-a", term.epoch, ReplicaAddresses(self.leader.address, "127.0.0.1:9004")
        )
        self.leader.known_leader = self.standby.known_leader = known
        loop = ControllerLoop(
            self.leader.cache,
            ActionWriter(self.kv, self.leader.cache),
            connected=lambda: set(SPUS),
            resync=0.05,
        )
        self._controllers = asyncio.create_task(loop.run(term), name="controllers")

    async def stop(self) -> None:
        term = self.leader.current_term
        if term is not None:
            term.end("test over")
        if self._controllers is not None:
            await asyncio.wait_for(self._controllers, 2)
        for replica in (self.standby, self.leader):
            await replica.stop()


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    c = Cluster()
    await c.start()
    try:
        yield c
    finally:
        await c.stop()


def computed(partitions: int, replication: int) -> TopicSpec:
    return TopicSpec(replicas=TopicReplicas.new_computed(partitions, replication))


async def test_a_topic_created_through_the_standby_is_provisioned(cluster: Cluster) -> None:
    async with AdminClient([cluster.standby.address]) as admin:
        created = await admin.create_topic("orders", computed(3, 2))
        assert created.status.resolution is TopicResolution.PROVISIONED
        assert sorted(created.status.replica_map) == [0, 1, 2]
        # the leader answered once the partitions were stored too
        assert len(cluster.leader.cache.partitions) == 3
        # reads come from the standby's own cache, which follows the KV
        await eventually(lambda: len(cluster.standby.cache.partitions) == 3)
        listed = await admin.list_topics()
        assert [t.key for t in listed] == ["orders"]
        partitions = await admin.list_partitions("orders")
        assert [p.key for p in partitions] == ["orders-0", "orders-1", "orders-2"]
        assert {len(p.spec.replicas) for p in partitions} == {2}


async def test_a_standby_redirects_writes_to_the_leader(cluster: Cluster) -> None:
    body = {"name": "orders", "spec": computed(1, 1).model_dump(mode="json")}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://{cluster.standby.address}/api/v1/topics?timeout=3",
            json=body,
            allow_redirects=False,
        ) as response,
    ):
        assert response.status == 307
        assert response.headers["Location"] == (
            f"http://{cluster.leader.address}/api/v1/topics?timeout=3"
        )
        doc = await response.json()
    assert doc["leader"]["replica_id"] == "sc-a"
    assert await cluster.kv.get(Kind.TOPIC.value, "orders") is None  # nothing written


async def test_an_invalid_spec_is_refused_naming_the_field(cluster: Cluster) -> None:
    body = {"name": "orders", "spec": {"replicas": {"computed": {"partitions": 0}}}}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://{cluster.standby.address}/api/v1/topics", json=body) as response,
    ):
        assert response.status == 400
        doc = await response.json()
    assert doc["field"] == "spec.replicas.computed.partitions"
    assert "greater than or equal to 1" in doc["error"]
    assert "replication_factor" in doc["error"]  # every problem is reported
    assert await cluster.kv.get(Kind.TOPIC.value, "orders") is None


async def test_a_duplicate_topic_is_a_conflict(cluster: Cluster) -> None:
    async with AdminClient([cluster.leader.address]) as admin:
        await admin.create_topic("orders", computed(1, 1))
        with pytest.raises(ApiError) as refused:
            await admin.create_topic("orders", computed(2, 1))
    assert refused.value.status == 409
    assert refused.value.field == "name"
    assert "already exists" in refused.value.message


async def test_too_few_spus_undoes_the_create(cluster: Cluster) -> None:
    async with AdminClient([cluster.standby.address]) as admin:
        with pytest.raises(ApiError) as refused:
            await admin.create_topic("orders", computed(1, 4))
    assert refused.value.status == 503
    assert "InsufficientResources" in refused.value.message
    assert "the topic was removed" in refused.value.message
    assert await cluster.kv.get(Kind.TOPIC.value, "orders") is None


async def test_deleting_a_topic_deletes_its_partitions(cluster: Cluster) -> None:
    async with AdminClient([cluster.standby.address, cluster.leader.address]) as admin:
        await admin.create_topic("orders", computed(2, 1))
        await admin.delete_topic("orders")
        assert "orders" not in cluster.leader.cache.topics
        await eventually(lambda: len(cluster.standby.cache.partitions) == 0)
        assert await admin.list_partitions() == []
        with pytest.raises(ApiError) as missing:
            await admin.describe_topic("orders")
        assert missing.value.status == 404


async def test_spus_register_and_unregister(cluster: Cluster) -> None:
    spec = CustomSpuSpec(
        id=6001,
        public_endpoint=Endpoint(host="10.0.0.1", port=9005),
        private_endpoint=Endpoint(host="10.0.0.1", port=9006),
        rack="r1",
    )
    async with AdminClient([cluster.standby.address]) as admin:
        spu = await admin.register_spu(spec)
        assert spu.key == "custom-spu-6001"
        assert spu.spec.rack == "r1"
        with pytest.raises(ApiError) as taken:
            await admin.register_spu(spec, name="other")
        assert (taken.value.status, taken.value.field) == (409, "id")
        await eventually(lambda: "custom-spu-6001" in cluster.standby.cache.spus)
        assert [s.spec.id for s in await admin.list_spus()] == [*SPUS, 6001]
        await admin.unregister_spu("custom-spu-6001")
        with pytest.raises(ApiError) as gone:
            await admin.unregister_spu("custom-spu-6001")
        assert gone.value.status == 404


async def test_watch_gives_a_full_sync_then_deltas(cluster: Cluster) -> None:
    async with (
        AdminClient([cluster.standby.address]) as admin,
        admin.watch(["topics"], heartbeats=True) as stream,
    ):
        first = await anext(stream)
        assert first.kind is Kind.TOPIC and first.full_sync and first.updates == ()
        assert first.leader_epoch == cluster.leader.current_term.epoch  # type: ignore[union-attr]
        create = asyncio.create_task(admin.create_topic("orders", computed(1, 1)))
        seen: list[Any] = []
        async with asyncio.timeout(5):
            async for batch in stream:
                if batch.is_heartbeat:
                    continue
                assert not batch.full_sync
                seen.extend((u.key, u.status.resolution) for u in batch.updates)
                if ("orders", TopicResolution.PROVISIONED) in seen:
                    break
        await create
        assert seen[0][0] == "orders"
        assert batch.revision >= cluster.standby.cache.topics.revision - 1


async def test_health_readiness_and_leader(cluster: Cluster) -> None:
    async with aiohttp.ClientSession() as http:
        for replica, role in ((cluster.leader, "leader"), (cluster.standby, "standby")):
            base = f"http://{replica.address}"
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
                assert (await response.json())["ready"] is True
            async with http.get(f"{base}/leader") as response:
                doc = await response.json()
            assert doc["role"] == role
            assert doc["replica_id"] == replica.replica_id
            assert doc["leader"]["public"] == cluster.leader.address


async def test_openapi_describes_every_route(cluster: Cluster) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://{cluster.standby.address}/openapi.json") as response,
    ):
        doc = await response.json()
    assert doc["openapi"].startswith("3.")
    served = {(method.lower(), path) for method, path, _ in ROUTES}
    described = {
        (method, path)
        for path, item in doc["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    }
    assert described == served
    assert "TopicSpec" in doc["components"]["schemas"]


async def test_the_client_fails_over_past_a_dead_endpoint(cluster: Cluster) -> None:
    dead = "127.0.0.1:1"
    async with AdminClient([dead, cluster.standby.address]) as admin:
        assert (await admin.leader()).leader is not None
        created = await admin.create_topic("orders", computed(1, 1))
    assert created.status.resolution is TopicResolution.PROVISIONED


# the CLI, in-process, against the live servers


def cli_root() -> click.Group:
    root = click.Group("ha-sc")
    root.add_command(topic)
    root.add_command(partition)
    spu = click.Group("spu")
    for command in (spu_list, spu_register, spu_unregister):
        spu.add_command(command)
    root.add_command(spu)
    return root


async def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, cli_root(), list(args), env=env)


async def test_cli_topic_commands(cluster: Cluster) -> None:
    sc = ["--sc", cluster.standby.address]
    created = await run_cli("topic", "create", "orders", "-p", "2", "-r", "2", *sc)
    assert created.exit_code == 0, created.output
    assert created.stdout == 'topic "orders" created\n'
    await eventually(lambda: len(cluster.standby.cache.partitions) == 2)

    listed = await run_cli("topic", "list", *sc)
    assert listed.exit_code == 0, listed.output
    header, row = listed.stdout.splitlines()
    assert header.split() == [
        "NAME", "TYPE", "PARTITIONS", "REPLICAS", "RETENTION", "TIME", "STATUS", "REASON",
    ]  # fmt: skip
    assert row.split() == ["orders", "computed", "2", "2", "-", "Provisioned"]

    as_json = await run_cli("topic", "list", "-O", "json", *sc)
    topics = json.loads(as_json.stdout)
    assert [t["name"] for t in topics] == ["orders"]
    assert topics[0]["status"]["resolution"] == "Provisioned"

    described = await run_cli("topic", "describe", "orders", *sc)
    assert described.exit_code == 0, described.output
    assert "Partition Count" in described.stdout and "TOPIC" in described.stdout
    described_json = json.loads(
        (await run_cli("topic", "describe", "orders", "-O", "json", *sc)).stdout
    )
    assert [p["name"] for p in described_json["partitions"]] == ["orders-0", "orders-1"]

    partitions = await run_cli("partition", "list", "-O", "json", *sc)
    assert len(json.loads(partitions.stdout)) == 2

    duplicate = await run_cli("topic", "create", "orders", *sc)
    assert duplicate.exit_code == 1
    assert "topic 'orders' already exists" in duplicate.stderr

    deleted = await run_cli("topic", "delete", "orders", *sc)
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout == 'topic "orders" deleted\n'


async def test_cli_partition_and_spu_tables(cluster: Cluster) -> None:
    env = {"HA_SC_ENDPOINTS": f"{cluster.leader.address},{cluster.standby.address}"}
    assert (await run_cli("topic", "create", "orders", env=env)).exit_code == 0
    await eventually(
        lambda: any(
            p.status.resolution is PartitionResolution.ONLINE
            for p in cluster.leader.cache.partitions.objects()
        )
    )
    table = await run_cli("partition", "list", env=env)
    assert table.exit_code == 0, table.output
    header, row = table.stdout.splitlines()
    assert header.split()[:5] == ["TOPIC", "PARTITION", "LEADER", "REPLICAS", "RESOLUTION"]
    leader = cluster.leader.cache.partitions.objects()[0].spec.leader
    assert row.split()[:5] == ["orders", "0", str(leader), "[]", "Online"]

    registered = await run_cli(
        "spu", "register", "--id", "6001", "--public-server", "10.0.0.1:9005",
        "--private-server", "10.0.0.1:9006", "edge", env=env,
    )  # fmt: skip
    assert registered.exit_code == 0, registered.output
    spus = await run_cli("spu", "list", env=env)
    lines = spus.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "TYPE", "RACK", "PUBLIC", "PRIVATE"]
    assert lines[-1].split() == [
        "6001",
        "edge",
        "Init",
        "custom",
        "-",
        "10.0.0.1:9005",
        "10.0.0.1:9006",
    ]
    unregistered = await run_cli("spu", "unregister", "edge", env=env)
    assert unregistered.exit_code == 0, unregistered.output
    again = await run_cli("spu", "unregister", "edge", env=env)
    assert again.exit_code == 1
    assert "spu 'edge' not found" in again.stderr
