"""An SC replica's /metrics: names, types and values from a memory KV and a real leader role."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from election.guard import Guard
from election.memory import MemoryCandidate
from election.term import Term
from ha_sc.api import ApiServer
from ha_sc.kv.memory import MemoryKv
from ha_sc.model import Kind, TopicReplicas, TopicSpec, encode_value
from ha_sc.sc.leader_role import ELECTION, LeaderRole
from ha_sc.sc.replica_metrics import replica_metrics
from ha_sc.sc.settings import ScSettings
from ha_sc.store import GlobalStore, start_dispatchers
from ha_sc.tasks import Supervisor
from ha_sc.telemetry.metrics import CONTENT_TYPE, exposition
from tests.metrics_text import parse, value
from tests.unit.test_api_handlers import Replica, call, topic_body
from tests.unit.test_leader_role import SPUS, add_spus
from tests.waiting import eventually


async def test_a_replica_shows_its_leadership_cache_and_controller_passes() -> None:
    kv = MemoryKv()
    cache = GlobalStore()
    supervisor = Supervisor()
    start_dispatchers(cache, kv, supervisor)
    settings = ScSettings(replica_id="sc-7", backend="memory")
    candidate = MemoryCandidate(kv.leases, election=ELECTION, name="sc-7", address="")
    role: LeaderRole | None = None
    metrics = replica_metrics(
        settings,
        cache,
        kv=lambda: kv,
        candidate=lambda: candidate,
        term=lambda: None if role is None else role.term,
        connected_spus=lambda: SPUS,
    )
    role = LeaderRole(
        candidate,
        kv,
        cache,
        replica="sc-7",
        connected_spus=lambda: SPUS,
        spu_grace=0.0,
        controller_resync=3600.0,
        metrics=metrics.controllers,
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        before, types = parse(exposition(metrics.registry).decode())
        assert value(before, "ha_sc_is_leader") == 0
        assert value(before, "ha_sc_epoch") == 0
        assert types["ha_sc_is_leader"] == "gauge"

        await add_spus(kv)
        spec = TopicSpec(replicas=TopicReplicas.new_computed(2, 2))
        await kv.create(Kind.TOPIC.value, "orders", encode_value(spec))
        tasks = [
            asyncio.create_task(candidate.run(), name="candidate-sc-7"),
            asyncio.create_task(role.run(), name="leader-role-sc-7"),
        ]
        await eventually(lambda: len(cache.partitions) == 2 and role.term is not None)
        await eventually(lambda: max(cache.view(k).revision for k in Kind) == kv.revision)
        samples, types = parse(exposition(metrics.registry).decode())
    finally:
        for running in tasks:
            running.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await supervisor.stop()

    assert value(samples, "ha_sc_replica_info", replica_id="sc-7", backend="memory") == 1
    assert value(samples, "ha_sc_is_leader") == 1
    assert role.term is None  # the role ended with its task
    assert value(samples, "ha_sc_epoch") >= 1
    assert value(samples, "ha_sc_leadership_changes_total", change="won") == 1
    assert value(samples, "ha_sc_cache_objects", kind="topics") == 1
    assert value(samples, "ha_sc_cache_objects", kind="partitions") == 2
    assert value(samples, "ha_sc_cache_objects", kind="spus") == len(SPUS)
    assert value(samples, "ha_sc_connected_spus") == len(SPUS)
    assert value(samples, "ha_sc_store_revision") == value(samples, "ha_sc_kv_revision")
    assert value(samples, "ha_sc_store_lag_revisions") == 0
    passes = value(samples, "ha_sc_controller_passes_total", controller="cluster")
    assert passes >= 1  # Init -> Provisioned with its partitions in one pass
    assert value(samples, "ha_sc_controller_pass_seconds_count", controller="cluster") == passes
    assert types["ha_sc_controller_passes"] == "counter"
    assert types["ha_sc_controller_pass_seconds"] == "histogram"
    assert types["ha_sc_fenced_writes_refused"] == "counter"
    # every labelled series is there from the start, at 0
    assert value(samples, "ha_sc_fenced_writes_refused_total", writer="controllers") == 0
    assert value(samples, "ha_sc_leadership_changes_total", change="lost") == 0
    errors = value(samples, "ha_sc_controller_errors_total", controller="cluster", reason="fenced")
    assert errors == 0
    assert not any(name.endswith("_created") for name, _ in samples)


@pytest.mark.parametrize("path", ["/metrics"])
async def test_the_public_api_serves_the_registry_in_the_text_format(path: str) -> None:
    kv = MemoryKv()
    cache = GlobalStore()
    settings = ScSettings(replica_id="sc-1", backend="memory")
    metrics = replica_metrics(
        settings,
        cache,
        kv=lambda: kv,
        candidate=lambda: None,
        term=lambda: None,
        connected_spus=set,
        pushes={"full_sync": 2, "delta": 5},
    )

    class View:
        replica_id = "sc-1"

        def __init__(self) -> None:
            self.cache = cache
            self.kv = kv

    server = ApiServer(View(), "127.0.0.1:0", metrics=metrics)  # type: ignore[arg-type]
    await server.start()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://{server.address}{path}") as response,
        ):
            assert response.status == 200
            assert response.headers["Content-Type"] == CONTENT_TYPE
            samples, _ = parse(await response.text())
    finally:
        await server.stop()
    assert value(samples, "ha_sc_is_leader") == 0
    assert value(samples, "ha_sc_cache_objects", kind="topics") == 0
    assert value(samples, "ha_sc_pushes_total", kind="full_sync") == 2
    assert value(samples, "ha_sc_pushes_total", kind="delta") == 5


async def test_an_api_write_refused_for_a_newer_epoch_is_counted() -> None:
    """The replica still believes in its term, but another replica took the lease: the
    KV refuses the create (503), and the refusal shows under writer="api"."""
    view = Replica()
    metrics = replica_metrics(
        ScSettings(replica_id=view.replica_id, backend="memory"),
        view.cache,
        kv=lambda: view.kv,
        candidate=lambda: None,
        term=view.term,
        connected_spus=set,
    )
    server = ApiServer(view, "127.0.0.1:0", metrics=metrics)
    await server.start()
    try:
        holder = view.kv.leases.acquire(ELECTION, view.replica_id)
        assert holder is not None
        view.current_term = Term(Guard(ELECTION, holder.epoch), valid_until=time.monotonic() + 60)
        assert view.kv.leases.release(ELECTION, holder.epoch)
        assert view.kv.leases.acquire(ELECTION, "sc-b") is not None
        await eventually(lambda: all(d.ready.is_set() for d in view.dispatchers.values()))
        async with aiohttp.ClientSession() as http:
            created = await call(
                http, "POST", f"http://{server.address}/api/v1/topics", json=topic_body()
            )
            assert created[0] == 503, created
            async with http.get(f"http://{server.address}/metrics") as response:
                samples, _ = parse(await response.text())
    finally:
        await server.stop()
        await view.supervisor.stop()
    assert value(samples, "ha_sc_fenced_writes_refused_total", writer="api") == 1
