"""Fixtures shared by the whole suite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.harnesses import MemoryHarness, RaftHarness
from tests.kv_harness import KvHarness

if TYPE_CHECKING:
    from tests.etcd_server import EtcdHarness, EtcdServer


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """One real etcd for the session; tests isolate themselves by key root."""
    from tests.etcd_server import started_etcd

    yield from started_etcd(tmp_path_factory)


@pytest.fixture(
    params=[
        "memory",
        pytest.param("raft", marks=pytest.mark.raft),
        pytest.param("etcd", marks=pytest.mark.etcd),
    ]
)
async def kv_harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KvHarness]:
    harness: MemoryHarness | RaftHarness | EtcdHarness
    if request.param == "memory":
        harness = MemoryHarness()
    elif request.param == "raft":
        harness = RaftHarness(tmp_path)
        await harness.start()
    else:
        from tests.etcd_server import EtcdHarness

        harness = EtcdHarness(request.getfixturevalue("etcd_server"))
    try:
        yield harness
    finally:
        await harness.close()


@pytest.fixture(autouse=True)
async def no_tasks_left_behind() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    leaked = [
        t
        for t in asyncio.all_tasks() - before
        if not t.done() and t is not asyncio.current_task() and not _grpc_call_status(t)
    ]
    for task in leaked:
        task.cancel()
    assert not leaked, f"tasks left running: {[t.get_name() for t in leaked]}"


def _grpc_call_status(task: asyncio.Task[object]) -> bool:
    """gRPC's own task awaiting a call's status: a cancelled call (a closed etcd watch)
    keeps it until gRPC's poller thread reports the cancel, some time after the call
    has ended for its caller."""
    return getattr(task.get_coro(), "__qualname__", "") == "_AioCall._handle_status_once_received"
