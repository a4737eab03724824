"""The SC <-> SPU control channel end to end: a real SpuServer on 127.0.0.1 over a real
in-memory store (dispatchers, cache, a term from the lease table), and SPUs as real OS
processes started with ``python -m ha_sc.spu``, observed through their state files."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from election.guard import Guard
from election.term import Term
from ha_sc.api.addresses import ReplicaAddresses
from ha_sc.api.replica_view import KnownLeader
from ha_sc.kv.memory import MemoryKv
from ha_sc.model import Endpoint, Kind, PartitionSpec, SpuSpec, encode_value
from ha_sc.sc.spu_server import SpuServer
from ha_sc.spu import read_state
from ha_sc.store import GlobalStore, start_dispatchers
from ha_sc.tasks import Supervisor
from tests.waiting import eventually

pytestmark = pytest.mark.slow  # SPUs as OS processes

ELECTION = "sc"
HEALTH_TIMEOUT = 1.2


class Store:
    """One cluster's store as every replica of it sees it: the KV and a watch-fed cache."""

    def __init__(self) -> None:
        self.kv = MemoryKv()
        self.cache = GlobalStore()
        self.supervisor = Supervisor()

    def win(self, replica_id: str) -> Term:
        """``replica_id`` takes the lease; its term carries the next epoch."""
        holder = self.kv.leases.acquire(ELECTION, replica_id)
        assert holder is not None
        return Term(Guard(ELECTION, holder.epoch), valid_until=time.monotonic() + 3600)

    def lose(self, term: Term) -> None:
        self.kv.leases.release(ELECTION, term.epoch)
        term.end("lease released")

    async def add_spu(self, spu_id: int) -> None:
        spec = SpuSpec(
            id=spu_id,
            public_endpoint=Endpoint(host="127.0.0.1", port=9005),
            private_endpoint=Endpoint(host="127.0.0.1", port=9006),
        )
        await self.kv.create(Kind.SPU.value, f"spu-{spu_id}", encode_value(spec))

    async def put_partition(self, key: str, leader: int, replicas: list[int]) -> None:
        value = encode_value(PartitionSpec(leader=leader, replicas=replicas))
        entry = await self.kv.get(Kind.PARTITION.value, key)
        if entry is None:
            await self.kv.create(Kind.PARTITION.value, key, value)
        else:
            await self.kv.update(Kind.PARTITION.value, key, value, expected_revision=entry.revision)

    async def delete_partition(self, key: str) -> None:
        await self.kv.delete(Kind.PARTITION.value, key)


class View:
    """A replica as its servers see it (the ReplicaView protocol)."""

    def __init__(self, replica_id: str, store: Store) -> None:
        self.replica_id = replica_id
        self._store = store
        self.current_term: Term | None = None
        self.known_leader: KnownLeader | None = None
        self.privates: list[str] = []

    @property
    def cache(self) -> GlobalStore:
        return self._store.cache

    @property
    def kv(self) -> MemoryKv:
        return self._store.kv

    def term(self) -> Term | None:
        return self.current_term

    def leader(self) -> KnownLeader | None:
        return self.known_leader

    def replica_privates(self) -> list[str]:
        return list(self.privates)

    def raft_group(self) -> None:
        return None

    async def step_down(self) -> None:
        self.current_term = None


class SpuProcess:
    def __init__(self, spu_id: int, sc: list[str], base: Path) -> None:
        self.spu_id = spu_id
        self.sc = sc
        self.data_dir = base / f"spu-{spu_id}"
        self.log_path = base / f"spu-{spu_id}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        args = ["-m", "ha_sc.spu", "--id", str(self.spu_id), "--data-dir", str(self.data_dir)]
        for address in self.sc:
            args += ["--sc-private", address]
        args += ["--status-interval", "0.1"]
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, *args, stdout=log, stderr=log
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def state(self) -> dict[str, Any]:
        return read_state(self.data_dir / "spu-state.json") or {}

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def roles(self) -> dict[str, tuple[str, int]]:
        return {r["partition"]: (r["role"], r["leader"]) for r in self.state().get("replicas", [])}

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)

    async def wait(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def end(self) -> None:
        """SIGKILL it if it still runs, by its PID, and reap it."""
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.signal(signal.SIGKILL)
        await self.wait()


SpuFactory = Callable[[int, list[str]], Awaitable[SpuProcess]]
ServerFactory = Callable[..., Awaitable[SpuServer]]


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    s = Store()
    start_dispatchers(s.cache, s.kv, s.supervisor)
    for spu_id in (5001, 5002, 5003):
        await s.add_spu(spu_id)
    yield s
    await s.supervisor.stop()


@pytest.fixture
async def servers() -> AsyncIterator[ServerFactory]:
    started: list[SpuServer] = []

    async def start(view: View, address: str = "127.0.0.1:0") -> SpuServer:
        server = SpuServer(view, address, health_timeout=HEALTH_TIMEOUT)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def spus(tmp_path: Path) -> AsyncIterator[SpuFactory]:
    started: list[SpuProcess] = []

    async def start(spu_id: int, sc: list[str]) -> SpuProcess:
        spu = SpuProcess(spu_id, sc, tmp_path)
        await spu.start()
        started.append(spu)
        return spu

    yield start
    for spu in started:
        await spu.end()


def leading(store: Store, name: str) -> View:
    view = View(name, store)
    view.current_term = store.win(name)
    return view


async def test_an_spu_registers_follows_the_specs_and_stops_cleanly(
    store: Store, servers: ServerFactory, spus: SpuFactory
) -> None:
    await store.put_partition("orders-0", 5001, [5001, 5002])
    view = leading(store, "sc-a")
    server = await servers(view)
    spu = await spus(5001, [server.address])

    await eventually(lambda: spu.state().get("sc") == server.address, what="spu follows sc-a")
    assert server.connected_ids() == {5001}
    state = spu.state()
    assert state["highest_epoch"] == view.current_term.epoch  # type: ignore[union-attr]
    assert state["spus"] == [5001, 5002, 5003]
    assert spu.roles() == {"orders-0": ("leader", 5001)}
    status = await eventually(lambda: server.last_status(5001), what="a status report")
    assert [(r.partition, r.leo, r.hw) for r in status.report.replicas] == [("orders-0", 0, 0)]
    assert status.at <= time.monotonic()

    await store.put_partition("orders-1", 5002, [5002, 5001])
    await eventually(lambda: "orders-1" in spu.roles(), what="the new partition")
    assert spu.roles()["orders-1"] == ("follower", 5002)

    await store.put_partition("orders-1", 5001, [5002, 5001])
    await eventually(lambda: spu.roles().get("orders-1") == ("leader", 5001), what="promotion")
    await store.put_partition("orders-0", 5002, [5001, 5002])
    await eventually(lambda: spu.roles().get("orders-0") == ("follower", 5002), what="demotion")
    await store.put_partition("other-0", 5002, [5002, 5003])  # not this spu's
    await store.delete_partition("orders-1")
    await eventually(lambda: set(spu.roles()) == {"orders-0"}, what="removal")
    log = spu.log()
    assert "replica orders-1 added as follower of spu 5002" in log
    assert "replica orders-1 promoted to leader (was follower of spu 5002)" in log
    assert "replica orders-0 demoted to follower of spu 5002" in log
    assert "replica orders-1 removed (was leader)" in log
    assert server.connected_ids() == {5001}
    assert spu.state()["refused"] == 0

    spu.signal(signal.SIGTERM)
    assert await spu.wait() == 0
    assert spu.state()["sc"] is None
    assert spu.state()["replicas"]  # what it holds stays
    await eventually(lambda: not server.connected_ids(), what="offline after SIGTERM")


async def test_a_standby_sends_the_spu_to_the_leader(
    store: Store, servers: ServerFactory, spus: SpuFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ha_sc.sc.spu")
    leader_view = leading(store, "sc-a")
    leader = await servers(leader_view)
    standby_view = View("sc-b", store)
    standby_view.known_leader = KnownLeader(
        "sc-a",
        leader_view.current_term.epoch,  # type: ignore[union-attr]
        ReplicaAddresses(public="127.0.0.1:9003", private=leader.address),
    )
    standby = await servers(standby_view)
    spu = await spus(5002, [standby.address])

    await eventually(lambda: spu.state().get("sc") == leader.address, what="spu reaches sc-a")
    assert leader.connected_ids() == {5002}
    assert standby.connected_ids() == set()
    assert f"sc-b is not the leader; sent it to {leader.address}" in caplog.text


async def test_an_spu_goes_to_the_next_leader_when_the_term_ends(
    store: Store, servers: ServerFactory, spus: SpuFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ha_sc.sc.spu")
    await store.put_partition("orders-0", 5001, [5001, 5003])
    a, b = leading(store, "sc-a"), View("sc-b", store)
    server_a = await servers(a)
    server_b = await servers(b)
    spu = await spus(5003, [server_a.address, server_b.address])
    await eventually(lambda: spu.state().get("sc") == server_a.address, what="spu follows sc-a")
    old_term = a.current_term
    assert old_term is not None

    # sc-a loses; sc-b wins a later epoch; sc-a, now a standby, knows it
    store.lose(old_term)
    a.current_term = None
    b.current_term = store.win("sc-b")
    a.known_leader = KnownLeader(
        "sc-b", b.current_term.epoch, ReplicaAddresses("127.0.0.1:9003", server_b.address)
    )
    await eventually(lambda: not server_a.connected_ids(), what="sc-a closes on losing")
    await eventually(lambda: spu.state().get("sc") == server_b.address, what="spu follows sc-b")
    assert server_b.connected_ids() == {5003}
    assert spu.state()["highest_epoch"] == b.current_term.epoch > old_term.epoch
    assert spu.roles() == {"orders-0": ("follower", 5001)}
    assert f"spu 5003 offline: term at epoch {old_term.epoch} ended: lease released" in caplog.text


async def test_an_spu_that_lost_its_leader_is_held_by_a_standby_until_it_wins(
    store: Store, servers: ServerFactory, spus: SpuFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ha_sc.sc.spu")
    a, b = leading(store, "sc-a"), View("sc-b", store)
    server_a = await servers(a)
    server_b = await servers(b)
    old_term = a.current_term
    assert old_term is not None
    b.known_leader = KnownLeader(
        "sc-a", old_term.epoch, ReplicaAddresses("127.0.0.1:9003", server_a.address)
    )
    spu = await spus(5003, [server_a.address, server_b.address])
    await eventually(lambda: spu.state().get("sc") == server_a.address, what="spu follows sc-a")

    # sc-a dies; sc-b still names it as the leader until its lease runs out
    store.lose(old_term)
    a.current_term = None
    await server_a.stop()
    await eventually(
        lambda: f"until a leader acts (it left epoch {old_term.epoch})" in caplog.text,
        what="sc-b holds the spu",
    )
    b.current_term = store.win("sc-b")
    await eventually(lambda: spu.state().get("sc") == server_b.address, what="spu follows sc-b")
    assert server_b.connected_ids() == {5003}
    assert "sent it to" not in caplog.text  # never sent back to the leader it lost


async def test_an_spu_finds_a_replica_it_was_not_given_through_the_leader(
    store: Store, servers: ServerFactory, spus: SpuFactory, caplog: pytest.LogCaptureFixture
) -> None:
    await store.put_partition("orders-0", 5001, [5001, 5003])
    a, b = leading(store, "sc-a"), View("sc-b", store)
    server_a = await servers(a)
    server_b = await servers(b)
    a.privates = [server_a.address, server_b.address]  # sc-b joined after the SPU started
    spu = await spus(5003, [server_a.address])
    await eventually(lambda: spu.state().get("sc") == server_a.address, what="spu follows sc-a")

    # sc-a leaves the set (stops serving); sc-b leads: the SPU was never given its address
    old_term = a.current_term
    assert old_term is not None
    store.lose(old_term)
    a.current_term = None
    await server_a.stop()
    b.current_term = store.win("sc-b")
    await eventually(lambda: spu.state().get("sc") == server_b.address, what="spu finds sc-b")
    assert server_b.connected_ids() == {5003}


async def test_an_unknown_spu_is_refused(
    store: Store, servers: ServerFactory, spus: SpuFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ha_sc.sc.spu")
    server = await servers(leading(store, "sc-a"))
    spu = await spus(9999, [server.address])
    await eventually(lambda: "refused this spu" in spu.log(), what="the spu hears it is refused")
    assert "spu 9999 is not registered with the cluster" in spu.log()
    assert "refused spu 9999" in caplog.text
    assert server.connected_ids() == set()
    assert spu.state()["sc"] is None
    assert spu.pid > 0  # it keeps trying, with backoff, until the operator registers it


async def test_a_killed_spu_is_offline_within_the_health_timeout(
    store: Store, servers: ServerFactory, spus: SpuFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ha_sc.sc.spu")
    server = await servers(leading(store, "sc-a"))
    spu = await spus(5001, [server.address])
    await eventually(lambda: server.connected_ids() == {5001}, what="connected")
    killed = time.monotonic()
    spu.signal(signal.SIGKILL)
    await spu.wait()
    await eventually(lambda: not server.connected_ids(), timeout=HEALTH_TIMEOUT + 0.5)
    assert time.monotonic() - killed < HEALTH_TIMEOUT + 0.5
    # a FIN, or a reset when a keepalive was in flight to the dead process
    assert re.search(r"spu 5001 offline: connection (closed by the spu|lost: .*reset)", caplog.text)


async def test_a_silent_spu_is_offline_after_the_health_timeout_and_comes_back(
    store: Store, servers: ServerFactory, spus: SpuFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ha_sc.sc.spu")
    server = await servers(leading(store, "sc-a"))
    spu = await spus(5001, [server.address])
    await eventually(lambda: server.connected_ids() == {5001}, what="connected")
    spu.signal(signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        await eventually(lambda: not server.connected_ids(), timeout=HEALTH_TIMEOUT + 1.0)
        silent_for = time.monotonic() - stopped
        assert HEALTH_TIMEOUT - 0.3 < silent_for < HEALTH_TIMEOUT + 1.0
        assert "spu 5001 offline: no status for 1.2 s" in caplog.text
    finally:
        spu.signal(signal.SIGCONT)
    await eventually(lambda: server.connected_ids() == {5001}, what="the spu reconnects")


async def test_a_deposed_leader_is_refused_by_the_spu(
    store: Store, servers: ServerFactory, spus: SpuFactory
) -> None:
    await store.put_partition("orders-0", 5001, [5001])
    store.lose(store.win("sc-old"))  # an earlier term, so the current one is epoch 2
    current = leading(store, "sc-a")
    assert current.current_term is not None and current.current_term.epoch == 2

    # a deposed leader that has not noticed: its own stale world, still under epoch 1
    stale_world = Store()
    start_dispatchers(stale_world.cache, stale_world.kv, stale_world.supervisor)
    try:
        await stale_world.add_spu(5001)
        await stale_world.put_partition("stale-0", 5001, [5001])
        deposed = View("sc-old", stale_world)
        deposed.current_term = Term(Guard(ELECTION, 1), valid_until=time.monotonic() + 3600)
        await eventually(lambda: len(stale_world.cache.partitions) == 1)
        server_a = await servers(current)
        server_old = await servers(deposed)
        address_a = server_a.address

        spu = await spus(5001, [address_a, server_old.address])
        await eventually(lambda: spu.state().get("sc") == address_a, what="spu follows sc-a")
        assert spu.state()["highest_epoch"] == 2

        await server_a.stop()  # sc-a goes away: the spu tries the deposed leader next
        await eventually(lambda: spu.state().get("refused", 0) >= 1, what="a refusal")
        state = spu.state()
        assert state["highest_epoch"] == 2
        assert state["sc"] is None
        assert spu.roles() == {"orders-0": ("leader", 5001)}  # nothing stale applied
        assert "refused a full_sync from stale epoch 1 (highest seen 2" in spu.log()

        server_back = await servers(current, address_a)  # sc-a returns
        await eventually(lambda: spu.state().get("sc") == address_a, what="spu back on sc-a")
        assert server_back.connected_ids() == {5001}
        assert spu.roles() == {"orders-0": ("leader", 5001)}
    finally:
        await stale_world.supervisor.stop()
