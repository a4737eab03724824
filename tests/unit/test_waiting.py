"""The waiting helper: a check polled until true, its value returned, a failure that
names what was awaited and the last value seen."""

from __future__ import annotations

import itertools

import pytest

from tests.waiting import eventually, eventually_sync


async def test_the_first_true_value_is_returned() -> None:
    counter = itertools.count()
    assert await eventually(lambda: next(counter) >= 3 and "third", interval=0) == "third"


async def test_an_async_check_is_awaited() -> None:
    calls: list[int] = []

    async def check() -> int:
        calls.append(1)
        return len(calls) if len(calls) > 1 else 0

    assert await eventually(check, interval=0) == 2


async def test_a_wait_that_runs_out_names_what_and_the_last_value() -> None:
    with pytest.raises(AssertionError, match=r"not within 0.05 s: the answer \(last seen: \[\]\)"):
        await eventually(list, timeout=0.05, interval=0.01, what="the answer")


async def test_an_error_in_the_check_ends_the_wait() -> None:
    def check() -> bool:
        raise KeyError("gone")

    with pytest.raises(KeyError, match="gone"):
        await eventually(check)


def test_the_sync_wait_returns_and_fails_alike() -> None:
    counter = itertools.count()
    assert eventually_sync(lambda: next(counter) == 2, interval=0) is True
    with pytest.raises(AssertionError, match=r"nothing \(last seen: 0\)"):
        eventually_sync(lambda: 0, timeout=0.02, interval=0.01, what="nothing")


async def test_until_decides_and_the_last_value_is_named() -> None:
    counter = itertools.count()
    assert await eventually(lambda: next(counter), until=lambda n: n >= 2, interval=0) == 2
    with pytest.raises(AssertionError, match=r"an odd number \(last seen: 2\)"):
        eventually_sync(lambda: 2, until=lambda n: n % 2, timeout=0.02, what="an odd number")
