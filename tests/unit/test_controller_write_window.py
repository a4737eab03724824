"""The controller's write window: wider while the store keeps up, narrower when it slows."""

from __future__ import annotations

import asyncio

from ha_sc.controllers.write_window import WriteWindow
from tests.waiting import eventually


def test_fast_commits_widen_the_window_up_to_its_limit() -> None:
    window = WriteWindow(start=4, limit=8, slow=0.1)
    for _ in range(200):
        window.record(0.01)
    assert window.size == 8.0


def test_a_slow_commit_halves_the_window_once_per_slow_period() -> None:
    window = WriteWindow(start=16, limit=64, slow=10.0)
    window.record(11.0)
    assert window.size == 8.0
    window.record(11.0)  # the same slow period: the writes already outstanding
    assert window.size == 8.0


def test_the_window_never_closes() -> None:
    window = WriteWindow(start=2, limit=8, slow=0.0)
    for _ in range(10):
        window.record(1.0)
    assert window.size == 1.0


async def test_slots_hold_writes_to_the_window() -> None:
    window = WriteWindow(start=3, limit=3, slow=10.0)
    most = 0
    release = asyncio.Event()

    async def write() -> None:
        nonlocal most
        async with window.slot():
            most = max(most, window.in_flight)
            await release.wait()

    tasks = [asyncio.create_task(write(), name=f"write-{n}") for n in range(10)]
    await eventually(lambda: window.in_flight == 3, what="three writes in flight")
    release.set()
    await asyncio.gather(*tasks)
    assert most == 3 and window.in_flight == 0


async def test_a_narrowed_window_admits_one_write_at_a_time() -> None:
    window = WriteWindow(start=1, limit=1, slow=10.0)
    order: list[str] = []

    async def write(name: str) -> None:
        async with window.slot():
            order.append(f"start {name}")
            await asyncio.sleep(0.01)
            order.append(f"end {name}")

    await asyncio.gather(*(write(n) for n in "abc"))
    assert order == ["start a", "end a", "start b", "end b", "start c", "end c"]


async def test_waiting_writes_get_slots_in_arrival_order() -> None:
    window = WriteWindow(start=4, limit=4, slow=10.0)
    started: list[int] = []
    most = 0

    async def write(n: int) -> None:
        nonlocal most
        async with window.slot():
            started.append(n)
            most = max(most, window.in_flight)
            await asyncio.sleep(0)

    await asyncio.gather(*(write(n) for n in range(2000)))
    assert started == list(range(2000))
    assert most == 4 and window.in_flight == 0 and window.waiting == 0


async def test_a_write_cancelled_as_its_slot_comes_passes_the_slot_on() -> None:
    window = WriteWindow(start=1, limit=1, slow=10.0)
    release = asyncio.Event()
    order: list[str] = []

    async def write(name: str) -> None:
        async with window.slot():
            order.append(name)
            await release.wait()

    async def first() -> None:
        await write("first")
        doomed.cancel()  # in the same step its slot was handed on: given, not yet taken

    leading = asyncio.create_task(first(), name="first")
    await asyncio.sleep(0)
    doomed = asyncio.create_task(write("doomed"), name="doomed")
    last = asyncio.create_task(write("last"), name="last")
    await asyncio.sleep(0)
    assert window.waiting == 2
    release.set()
    await leading
    await asyncio.gather(doomed, return_exceptions=True)
    await asyncio.wait_for(last, 1.0)
    assert doomed.cancelled()
    assert order == ["first", "last"]
    assert window.in_flight == 0
