"""The shared tasks module: ``first_of`` races named tasks, ``Supervisor`` watches them."""

from __future__ import annotations

import asyncio

import pytest

from ha_sc.tasks import Supervisor, TaskFailure, first_of, until_first


async def _after(event: asyncio.Event, value: str) -> str:
    await event.wait()
    return value


async def _forever() -> str:
    await asyncio.Event().wait()
    return "never"


async def test_first_of_returns_the_first_result_and_cancels_the_rest() -> None:
    go = asyncio.Event()
    cancelled: list[str] = []

    async def loser() -> str:
        try:
            return await _forever()
        except asyncio.CancelledError:
            cancelled.append("loser")
            raise

    result = await first_of({"race-win": _after(go, "won"), "race-lose": loser(), "go": _go(go)})
    assert result == "won"
    assert cancelled == ["loser"]
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("race-")]


async def _go(event: asyncio.Event) -> str:
    event.set()
    await asyncio.Event().wait()
    return "go"


async def test_first_of_names_its_tasks() -> None:
    async def own_name() -> str:
        task = asyncio.current_task()
        assert task is not None
        return task.get_name()

    assert await first_of({"link-read": own_name()}) == "link-read"


async def test_first_of_propagates_the_winners_error() -> None:
    async def broken() -> str:
        raise RuntimeError("socket gone")

    with pytest.raises(RuntimeError, match="socket gone"):
        await first_of({"broken": broken(), "idle": _forever()})


async def test_first_of_raises_cancelled_when_the_winner_was_cancelled() -> None:
    async def cancels_itself() -> str:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)
        return "unreachable"

    with pytest.raises(asyncio.CancelledError):
        await first_of({"self-cancel": cancels_itself(), "idle": _forever()})


async def test_cancelling_the_caller_cancels_every_task() -> None:
    started = asyncio.Event()

    async def waiting() -> str:
        started.set()
        return await _forever()

    outer = asyncio.create_task(first_of({"w1": waiting(), "w2": _forever()}))
    await started.wait()
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert not [t for t in asyncio.all_tasks() if t.get_name() in {"w1", "w2"}]


async def test_first_of_refuses_an_empty_race() -> None:
    with pytest.raises(ValueError, match="at least one"):
        await first_of({})


async def test_a_critical_task_that_returns_is_a_failure() -> None:
    failures: list[TaskFailure] = []
    supervisor = Supervisor(on_fatal=failures.append)

    async def quits() -> None:
        return None

    supervisor.start("quitter", quits())
    failure = await supervisor.wait_failed()
    assert failure.task_name == "quitter"
    assert failure.error is None
    assert failures == [failure]
    await supervisor.stop()


async def test_until_first_returns_when_one_signal_fires_and_cancels_the_rest() -> None:
    fired = asyncio.Event()
    fired.set()
    await until_first({"sig-fired": fired.wait(), "sig-idle": _forever()}, timeout=60)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("sig-")]


async def test_until_first_returns_after_the_timeout_when_nothing_fires() -> None:
    await until_first({"quiet-1": _forever(), "quiet-2": _forever()}, timeout=0)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("quiet-")]


async def test_until_first_ignores_how_the_first_ended() -> None:
    async def broken() -> None:
        raise RuntimeError("store closed")

    await until_first({"broken": broken(), "idle": _forever()})


async def test_until_first_of_nothing_returns_at_once() -> None:
    await until_first({})
