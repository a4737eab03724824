"""Fixtures shared by the whole suite, and the rule that keeps ``-m "not slow"`` fast.

The rule: a test that starts an OS process, a real etcd, real Raft nodes, a chaos
cluster or network namespaces carries a marker (``slow``, ``etcd``, ``raft``, ``chaos``
or ``netns``), and ``etcd``, ``raft``, ``chaos`` and ``netns`` each imply ``slow``. So
``pytest -m "not slow"`` runs only tests in this one process (unit tests and
in-process integration tests). It is enforced:
collection fails for a test using the ``etcd_server`` fixture without ``etcd``, and a
test without a marker fails if it starts a process or a Raft node.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pysyncobj
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


@pytest.fixture(scope="session")
def netns_sweep() -> Iterator[None]:
    """After the session, delete any namespace or link this run's multi-host tests left
    (each test removes its own; this catches a run killed in the middle of a cleanup)."""
    from tests.netns import sweep

    yield
    left = sweep()
    assert not left, f"multi-host tests left behind (now deleted): {left}"


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


SLOW_IMPLIED_BY = ("etcd", "raft", "chaos", "netns")
"""Markers of tests that start processes, etcd, Raft nodes, a chaos cluster or
network namespaces."""


def _marked(item: pytest.Item, *names: str) -> bool:
    return any(item.get_closest_marker(name) is not None for name in names)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test marked ``etcd``, ``raft`` or ``chaos`` (before ``-m``
    selects), and refuse a test that uses the real etcd without saying so."""
    unmarked_etcd = []
    for item in items:
        if _marked(item, *SLOW_IMPLIED_BY) and not _marked(item, "slow"):
            item.add_marker(pytest.mark.slow)
        if "etcd_server" in getattr(item, "fixturenames", ()) and not _marked(item, "etcd"):
            unmarked_etcd.append(item.nodeid)
    if unmarked_etcd:
        raise pytest.UsageError(
            "tests using the etcd_server fixture must be marked etcd: " + ", ".join(unmarked_etcd)
        )


@pytest.fixture(autouse=True)
def processes_need_a_marker(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail a test that starts an OS process or a Raft node without a ``slow`` marker
    (``etcd``, ``raft`` and ``chaos`` imply it), so ``-m "not slow"`` stays in-process."""
    if _marked(request.node, "slow", *SLOW_IMPLIED_BY):
        return
    where = request.node.nodeid

    def refuse(what: str) -> Any:
        def refused(*_args: object, **_kwargs: object) -> None:
            raise AssertionError(
                f"{where} starts {what} but is not marked slow (or etcd, raft, chaos): "
                "mark it so -m 'not slow' stays a fast in-process loop"
            )

        return refused

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("an OS process"))
    monkeypatch.setattr(pysyncobj.SyncObj, "__init__", refuse("a Raft node"))
