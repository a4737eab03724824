"""Handlers of the public API on one replica over the memory KV: validation, leader
gating, KV failures and provisioning outcomes, each through a loopback server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp
import pytest

from election.guard import Guard
from election.term import Term
from ha_sc.api import ApiServer, topic_store
from ha_sc.api.addresses import ReplicaAddresses
from ha_sc.api.idempotency import Answer, RequestLedger
from ha_sc.api.replica_view import KnownLeader
from ha_sc.api.request_marks import create_marked
from ha_sc.client import AdminClient, ApiError
from ha_sc.controllers.topics.validation import DEFAULT_LIMITS, TopicLimits
from ha_sc.kv.api import BatchOp, BatchOutcomes, KvUnavailable
from ha_sc.kv.memory import MemoryKv
from ha_sc.model import (
    CustomSpuSpec,
    Endpoint,
    Kind,
    SpuResolution,
    SpuSpec,
    SpuStatus,
    SpuType,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    TopicStatus,
    encode_value,
)
from ha_sc.store import GlobalStore, start_dispatchers
from ha_sc.tasks import Supervisor
from tests.waiting import eventually


class FlakyKv(MemoryKv):
    """The memory KV, whose writes can be made to fail as an unreachable store's do."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def create(self, kind: str, key: str, value: bytes, *, guard: Guard | None = None) -> int:
        if self.down:
            raise KvUnavailable("no quorum")
        return await super().create(kind, key, value, guard=guard)

    async def write_batch(
        self, ops: Sequence[BatchOp], *, guard: Guard | None = None
    ) -> BatchOutcomes:
        if self.down:
            raise KvUnavailable("no quorum")
        return await super().write_batch(ops, guard=guard)


class Replica:
    """A ReplicaView whose leadership the test sets by hand."""

    def __init__(
        self, *, ready: Callable[[], bool] | None = None, limits: TopicLimits = DEFAULT_LIMITS
    ) -> None:
        self.replica_id = "sc-a"
        self.kv = FlakyKv()
        self.cache = GlobalStore()
        self.supervisor = Supervisor()
        self.dispatchers = start_dispatchers(self.cache, self.kv, self.supervisor)
        self.current_term: Term | None = None
        self.known_leader: KnownLeader | None = None
        self.server = ApiServer(
            self,
            "127.0.0.1:0",
            provision_timeout=2.0,
            ready=ready or (lambda: all(d.ready.is_set() for d in self.dispatchers.values())),
            watch_heartbeat=0.1,
            limits=limits,
        )

    def term(self) -> Term | None:
        return self.current_term

    def leader(self) -> KnownLeader | None:
        return self.known_leader

    def replica_privates(self) -> list[str]:
        return []

    def raft_group(self) -> None:
        return None

    async def step_down(self) -> None:
        self.current_term = None

    @property
    def base(self) -> str:
        return f"http://{self.server.address}"

    def lead(self) -> Term:
        holder = self.kv.leases.acquire("sc", self.replica_id)
        assert holder is not None
        self.current_term = Term(Guard("sc", holder.epoch), valid_until=time.monotonic() + 3600)
        self.known_leader = KnownLeader(
            self.replica_id, holder.epoch, ReplicaAddresses(self.server.address, "h:9004")
        )
        return self.current_term


@pytest.fixture
async def replica() -> AsyncIterator[Replica]:
    r = Replica()
    await r.server.start()
    try:
        yield r
    finally:
        await r.server.stop()
        await r.supervisor.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any, Any]:
    async with http.request(method, url, allow_redirects=False, **kwargs) as response:
        return response.status, await response.json(), response.headers


def topic_body(name: str = "orders", **spec: Any) -> dict[str, Any]:
    return {
        "name": name,
        "spec": spec or {"replicas": {"computed": {"partitions": 1, "replication_factor": 1}}},
    }


async def add_spu(
    kv: MemoryKv, spu_id: int, *, managed: bool = False, status: SpuStatus | None = None
) -> None:
    spec = SpuSpec(
        id=spu_id,
        spu_type=SpuType.MANAGED if managed else SpuType.CUSTOM,
        public_endpoint=Endpoint(host="127.0.0.1", port=9005),
        private_endpoint=Endpoint(host="127.0.0.1", port=9006),
    )
    await kv.create(Kind.SPU.value, f"spu-{spu_id}", encode_value(spec, status))


# reads and readiness


async def test_reads_wait_for_the_first_sync(http: aiohttp.ClientSession) -> None:
    r = Replica(ready=lambda: False)
    await r.server.start()
    try:
        status, doc, _ = await call(http, "GET", f"{r.base}/api/v1/topics")
        assert status == 503
        assert "not synced" in doc["error"]
        status, doc, _ = await call(http, "GET", f"{r.base}/readyz")
        assert (status, doc["ready"]) == (503, False)
        status, doc, _ = await call(http, "GET", f"{r.base}/healthz")
        assert (status, doc["status"]) == (200, "ok")
    finally:
        await r.server.stop()
        await r.supervisor.stop()


async def test_an_unknown_topic_is_404(replica: Replica, http: aiohttp.ClientSession) -> None:
    await asyncio.wait_for(replica.dispatchers[Kind.TOPIC].ready.wait(), 2)
    status, doc, _ = await call(http, "GET", f"{replica.base}/api/v1/topics/nope")
    assert status == 404
    assert doc == {"error": "topic 'nope' not found", "field": "name"}


async def test_unknown_paths_and_methods_answer_json(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    status, doc, _ = await call(http, "GET", f"{replica.base}/api/v2/topics")
    assert (status, doc["error"]) == (404, "no such endpoint: GET /api/v2/topics")
    status, doc, headers = await call(http, "PUT", f"{replica.base}/api/v1/topics")
    assert status == 405
    assert "GET" in headers["Allow"] and "POST" in headers["Allow"]


async def test_a_watch_of_an_unknown_kind_is_refused(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    status, doc, _ = await call(http, "GET", f"{replica.base}/api/v1/watch?kinds=topics,brokers")
    assert status == 400
    assert doc["field"] == "kinds"


async def test_stopping_the_server_ends_open_watches(http: aiohttp.ClientSession) -> None:
    r = Replica()
    await r.server.start()
    try:
        async with http.get(f"{r.base}/api/v1/watch?kinds=spus") as response:
            first = await response.content.readline()
            assert b'"full_sync":true' in first
            started = time.monotonic()
            await r.server.stop()
            assert time.monotonic() - started < 1.0
            rest = await response.content.read()
        assert all(b'"heartbeat":true' in line for line in rest.splitlines())
    finally:
        await r.supervisor.stop()


# request validation


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": "Orders", "spec": {}}, "name", "may contain only lowercase letters"),
        ({"name": "orders"}, "spec", "Field required"),
        ({**topic_body(), "extra": 1}, "extra", "Extra inputs are not permitted"),
        (
            topic_body(
                replicas={
                    "computed": {"partitions": 1, "replication_factor": 1},
                    "assigned": {"maps": []},
                }
            ),
            "spec.replicas.assigned.maps",
            "at least one partition",
        ),
        (
            topic_body(
                replicas={"computed": {"partitions": 1, "replication_factor": 1}}, segment_size=0
            ),
            "spec.segment_size",
            "greater than 0",
        ),
        ([1, 2], None, "must be a JSON object"),
    ],
)
async def test_invalid_topic_requests_name_the_field(
    replica: Replica, http: aiohttp.ClientSession, body: Any, field: str | None, words: str
) -> None:
    replica.lead()
    status, doc, _ = await call(http, "POST", f"{replica.base}/api/v1/topics", json=body)
    assert status == 400
    assert doc["field"] == field
    assert words in doc["error"]
    assert (await replica.kv.list(Kind.TOPIC.value)).entries == ()


async def test_a_body_that_is_not_json_is_refused(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    status, doc, _ = await call(http, "POST", f"{replica.base}/api/v1/topics", data=b"{nope")
    assert status == 400
    assert doc["error"].startswith("request body is not valid JSON")


async def test_a_body_nested_too_deep_is_refused_not_an_internal_error(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    status, doc, _ = await call(http, "POST", f"{replica.base}/api/v1/topics", data=body)
    assert status == 400
    assert doc["error"].startswith("request body is not valid JSON")


async def test_a_bad_wait_is_refused(replica: Replica, http: aiohttp.ClientSession) -> None:
    replica.lead()
    url = f"{replica.base}/api/v1/topics?timeout=forever"
    status, doc, _ = await call(http, "POST", url, json=topic_body())
    assert (status, doc["field"]) == (400, "timeout")


async def test_an_assigned_map_naming_unknown_spus_is_a_conflict(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    replica.lead()
    await add_spu(replica.kv, 5001)
    await eventually(lambda: "spu-5001" in replica.cache.spus, timeout=2)
    body = topic_body(replicas={"assigned": {"maps": [{"id": 0, "replicas": [5001, 5009]}]}})
    status, doc, _ = await call(http, "POST", f"{replica.base}/api/v1/topics", json=body)
    assert status == 409
    assert doc["error"] == "invalid topic config: assigned replicas name unknown spu id: 5009"
    assert await replica.kv.get(Kind.TOPIC.value, "orders") is None


async def test_a_create_over_the_partition_caps_is_refused_naming_the_limit(
    http: aiohttp.ClientSession,
) -> None:
    replica = Replica(limits=TopicLimits(max_partitions_per_topic=10, max_partitions_in_cluster=12))
    await replica.server.start()
    try:
        replica.lead()
        held = TopicSpec(replicas=TopicReplicas.new_computed(8, 1))
        await replica.kv.create(Kind.TOPIC.value, "held", encode_value(held))
        await eventually(lambda: "held" in replica.cache.topics, timeout=2)
        url = f"{replica.base}/api/v1/topics"

        def computed(partitions: int) -> dict[str, Any]:
            return {"replicas": {"computed": {"partitions": partitions, "replication_factor": 1}}}

        status, doc, _ = await call(http, "POST", url, json=topic_body(**computed(11)))
        assert status == 409
        assert "limit of 10 partitions per topic" in doc["error"]
        status, doc, _ = await call(http, "POST", url, json=topic_body(**computed(5)))
        assert status == 409
        assert "to 13, over the limit of 12 partitions in the cluster" in doc["error"]
        assert await replica.kv.get(Kind.TOPIC.value, "orders") is None
    finally:
        await replica.server.stop()
        await replica.supervisor.stop()


# leadership


async def test_no_leader_means_503_and_nothing_written(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    status, doc, headers = await call(
        http, "POST", f"{replica.base}/api/v1/topics", json=topic_body()
    )
    assert (status, doc["error"]) == (503, "no leader elected yet")
    assert headers["Retry-After"] == "1"
    status, doc, _ = await call(http, "DELETE", f"{replica.base}/api/v1/spus/spu-1")
    assert (status, doc["error"]) == (503, "no leader elected yet")
    assert (await replica.kv.list(Kind.TOPIC.value)).entries == ()


async def test_a_replica_elected_but_not_acting_asks_to_retry(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    replica.lead()
    replica.current_term = None
    status, doc, _ = await call(http, "POST", f"{replica.base}/api/v1/topics", json=topic_body())
    assert status == 503
    assert "not acting yet" in doc["error"]


async def test_a_deposed_leaders_write_is_refused(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    term = replica.lead()
    assert replica.kv.leases.transfer("sc", term.epoch, "sc-b", "") is not None
    status, doc, headers = await call(
        http, "POST", f"{replica.base}/api/v1/topics", json=topic_body()
    )
    assert (status, doc["error"]) == (503, "leadership changed, retry")
    assert headers["Retry-After"] == "1"
    assert await replica.kv.get(Kind.TOPIC.value, "orders") is None


async def test_an_unavailable_kv_is_503(replica: Replica, http: aiohttp.ClientSession) -> None:
    replica.lead()
    replica.kv.down = True
    status, doc, headers = await call(
        http, "POST", f"{replica.base}/api/v1/topics", json=topic_body()
    )
    assert status == 503
    assert doc["error"] == "the KV store is unavailable: no quorum"
    assert "Retry-After" not in headers  # the write may have been applied


async def test_the_client_retries_a_write_until_a_leader_is_elected(replica: Replica) -> None:
    spec = CustomSpuSpec(
        id=7,
        public_endpoint=Endpoint(host="h", port=1),
        private_endpoint=Endpoint(host="h", port=2),
    )
    asyncio.get_running_loop().call_later(0.3, replica.lead)
    async with AdminClient([replica.server.address], timeout=5) as admin:
        spu = await admin.register_spu(spec, name="late")
    assert spu.key == "late"


async def test_the_client_gives_up_at_its_deadline(replica: Replica) -> None:
    started = time.monotonic()
    async with AdminClient([replica.server.address], timeout=0.5) as admin:
        with pytest.raises(ApiError) as refused:
            await admin.delete_topic("orders")
    assert (refused.value.status, refused.value.message) == (503, "no leader elected yet")
    assert 0.4 < time.monotonic() - started < 2


# provisioning outcomes


async def test_a_topic_not_provisioned_in_time_is_removed(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    replica.lead()  # no controllers run: the topic stays Init
    url = f"{replica.base}/api/v1/topics?timeout=0.2"
    status, doc, _ = await call(http, "POST", url, json=topic_body())
    assert status == 504
    assert doc["error"] == (
        "topic 'orders' was not provisioned within 0.2 s: status Init; the topic was removed"
    )
    assert await replica.kv.get(Kind.TOPIC.value, "orders") is None
    assert "orders" not in replica.cache.topics


async def add_online_spus(replica: Replica, *ids: int) -> None:
    for spu_id in ids:
        await add_spu(replica.kv, spu_id, status=SpuStatus(resolution=SpuResolution.ONLINE))
    await eventually(lambda: len(replica.cache.spus) == len(ids))


async def test_a_topic_is_stored_provisioned_with_its_partitions_in_one_write(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    """No controllers run: the create itself stores what their first pass would."""
    await add_online_spus(replica, 5001, 5002)
    replica.lead()
    body = topic_body(replicas={"computed": {"partitions": 2, "replication_factor": 2}})
    status, doc, _ = await call(http, "POST", f"{replica.base}/api/v1/topics", json=body)
    assert status == 201, doc
    assert doc["status"]["resolution"] == "Provisioned"
    stored = sorted((await replica.kv.list(Kind.PARTITION.value)).entries, key=lambda e: e.key)
    assert [e.key for e in stored] == ["orders-0", "orders-1"]
    assert all(b'"resolution":"Online"' in e.value for e in stored)
    topic = await replica.kv.get(Kind.TOPIC.value, "orders")
    assert topic is not None and min(e.create_revision for e in stored) > topic.create_revision


async def test_in_a_large_store_a_create_leaves_the_placement_to_the_controllers(
    replica: Replica, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_online_spus(replica, 5001, 5002)
    monkeypatch.setattr(topic_store, "STORE_UP_TO", -1)  # every store counts as large
    replica.lead()  # no controllers run: the topic stays Init
    url = f"{replica.base}/api/v1/topics?timeout=0.2"
    status, doc, _ = await call(http, "POST", url, json=topic_body())
    assert status == 504
    assert "status Init" in doc["error"]
    assert (await replica.kv.list(Kind.PARTITION.value)).entries == ()


async def test_creates_of_one_name_at_once_store_one_topic_and_only_its_partitions(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    await add_online_spus(replica, 5001, 5002)
    replica.lead()
    url = f"{replica.base}/api/v1/topics"
    answers = await asyncio.gather(
        *(
            call(
                http,
                "POST",
                url,
                json=topic_body(replicas={"computed": {"partitions": n, "replication_factor": 1}}),
            )
            for n in (1, 3, 2)
        )
    )
    statuses = sorted(a[0] for a in answers)
    assert statuses == [201, 409, 409]
    (created,) = [a[1] for a in answers if a[0] == 201]
    count = created["spec"]["replicas"]["computed"]["partitions"]
    stored = (await replica.kv.list(Kind.PARTITION.value)).entries
    assert sorted(e.key for e in stored) == [f"orders-{n}" for n in range(count)]


async def test_an_invalid_config_found_by_the_controllers_is_409_and_undone(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    replica.lead()

    async def controller() -> None:
        await eventually(lambda: "orders" in replica.cache.topics)
        seen = replica.cache.topics.get("orders")
        assert seen is not None
        status = TopicStatus(resolution=TopicResolution.INVALID_CONFIG, reason="too odd")
        await replica.kv.update(
            Kind.TOPIC.value,
            "orders",
            encode_value(seen.spec, status),
            expected_revision=seen.meta.revision,
        )

    task = asyncio.create_task(controller())
    status, doc, _ = await call(http, "POST", f"{replica.base}/api/v1/topics", json=topic_body())
    await task
    assert status == 409
    assert doc["error"] == "topic 'orders' is InvalidConfig: too odd; the topic was removed"
    assert (doc["resolution"], doc["reason"]) == ("InvalidConfig", "too odd")
    assert await replica.kv.get(Kind.TOPIC.value, "orders") is None


# spus


async def test_spu_registration_conflicts(replica: Replica, http: aiohttp.ClientSession) -> None:
    replica.lead()
    body = EDGE_SPU
    status, doc, headers = await call(http, "POST", f"{replica.base}/api/v1/spus", json=body)
    assert status == 201
    assert headers["Location"] == "/api/v1/spus/edge"
    assert (doc["name"], doc["spec"]["spu_type"]) == ("edge", "custom")
    status, doc, _ = await call(http, "POST", f"{replica.base}/api/v1/spus", json=body)
    assert (status, doc["field"]) == (409, "name")
    status, doc, _ = await call(
        http, "POST", f"{replica.base}/api/v1/spus", json={**body, "name": "Edge"}
    )
    assert (status, doc["field"]) == (400, "name")
    bad_port = {**body, "name": "x", "public_endpoint": {"host": "h", "port": 0}}
    status, doc, _ = await call(http, "POST", f"{replica.base}/api/v1/spus", json=bad_port)
    assert (status, doc["field"]) == (400, "public_endpoint.port")


async def test_a_managed_spu_cannot_be_unregistered(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    replica.lead()
    await add_spu(replica.kv, 5001, managed=True)
    await eventually(lambda: "spu-5001" in replica.cache.spus, timeout=2)
    status, doc, _ = await call(http, "DELETE", f"{replica.base}/api/v1/spus/spu-5001")
    assert status == 409
    assert "managed by an spu group" in doc["error"]
    assert await replica.kv.get(Kind.SPU.value, "spu-5001") is not None


async def test_a_taken_address_fails_to_start_and_leaves_nothing_running(
    replica: Replica,
) -> None:
    second = ApiServer(replica, replica.server.address)
    with pytest.raises(OSError):
        await second.start()
    await second.stop()  # harmless, as is stopping a server never started
    await ApiServer(replica, "127.0.0.1:0").stop()


# idempotency keys

EDGE_SPU = {
    "name": "edge",
    "id": 9,
    "public_endpoint": {"host": "h", "port": 1},
    "private_endpoint": {"host": "h", "port": 2},
}
"""An SPU registration the idempotency tests repeat."""


async def test_a_repeated_write_with_one_key_gets_the_first_answer(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    replica.lead()
    body = EDGE_SPU
    url = f"{replica.base}/api/v1/spus"
    key = {"Idempotency-Key": "k-1"}
    first = await call(http, "POST", url, json=body, headers=key)
    again = await call(http, "POST", url, json=body, headers=key)
    assert first[0] == again[0] == 201  # not 409 "already exists"
    assert first[1] == again[1]
    assert again[2]["Idempotent-Replay"] == "true"
    status, _, _ = await call(http, "POST", url, json=body, headers={"Idempotency-Key": "k-2"})
    assert status == 409  # a new key is a new request
    status, doc, _ = await call(http, "POST", url, json={**body, "id": 10}, headers=key)
    assert status == 422 and "different request" in doc["error"]
    deleted = await call(http, "DELETE", f"{url}/edge", headers={"Idempotency-Key": "d-1"})
    deleted_again = await call(http, "DELETE", f"{url}/edge", headers={"Idempotency-Key": "d-1"})
    assert deleted[0] == deleted_again[0] == 200  # not 404


async def test_a_keyed_create_a_former_leader_stored_is_answered_as_the_first(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    """The replica's ledger never saw the key: the mark in the KV tells a repeat from a
    create by another request."""
    await add_online_spus(replica, 5001)
    term = replica.lead()
    provisioned = TopicStatus(resolution=TopicResolution.PROVISIONED, replica_map={})
    spec = TopicSpec(replicas=TopicReplicas.new_computed(1, 1))
    await create_marked(
        replica.kv, term.guard, "k-1", "topics", "orders", encode_value(spec, provisioned)
    )
    url = f"{replica.base}/api/v1/topics"
    body = topic_body()
    status, doc, _ = await call(http, "POST", url, json=body, headers={"Idempotency-Key": "k-1"})
    assert status == 201, doc
    assert doc["status"]["resolution"] == "Provisioned"
    status, _, _ = await call(http, "POST", url, json=body, headers={"Idempotency-Key": "k-2"})
    assert status == 409


async def test_concurrent_repeats_of_one_key_run_once(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    replica.lead()
    body = EDGE_SPU
    url = f"{replica.base}/api/v1/spus"
    key = {"Idempotency-Key": "register-edge"}
    registers = [call(http, "POST", url, json=body, headers=key) for _ in range(3)]
    answers = await asyncio.wait_for(asyncio.gather(*registers), 10)
    assert [status for status, _, _ in answers] == [201, 201, 201]


async def test_an_unfinished_answer_is_not_kept(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    url = f"{replica.base}/api/v1/topics/orders"
    key = {"Idempotency-Key": "early"}
    status, _, _ = await call(http, "DELETE", url, headers=key)
    assert status == 503  # no leader yet: nothing written, nothing remembered
    replica.lead()
    status, _, _ = await call(http, "DELETE", url, headers=key)
    assert status == 404  # carried out afresh


def test_the_ledger_forgets_by_count_and_age() -> None:
    now = [0.0]
    ledger = RequestLedger(capacity=2, max_age=10.0, clock=lambda: now[0])

    async def fill() -> None:
        for key in ("a", "b", "c"):
            ledger.finish(key, ledger.begin(key, "f"), Answer(200, b"{}", ()))

    asyncio.run(fill())
    assert ledger.find("a") is None and ledger.find("c") is not None
    now[0] = 11.0
    assert ledger.find("c") is None and len(ledger) == 0
