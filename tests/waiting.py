"""The one way a test waits for something to become true: poll a check, bounded in time.

``eventually`` (in a coroutine) and ``eventually_sync`` (in a thread or plain test) call
``check`` until it returns something true (or, given ``until``, something ``until``
accepts) and return that value. After ``timeout`` seconds they fail the test with an
``AssertionError`` naming ``what`` was awaited and the last value seen. An exception
raised by ``check`` ends the wait at once.

The async wait measures time on the running loop's clock, so a test on a fake clock
waits in fake time. Domain waits ("until the SPU is online") are thin functions over
these two.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

WAIT = 30.0
"""Default bound of every wait: generous for a noisy shared 2-core machine; a wait that
succeeds returns as soon as its check holds, so only a failing test pays it."""
INTERVAL = 0.02
"""Default pause between two checks (seconds)."""


def _failure(what: str, check: object, timeout: float, last: object) -> AssertionError:
    return AssertionError(f"not within {timeout:g} s: {what or check} (last seen: {last!r})")


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = WAIT,
    interval: float = INTERVAL,
    what: str = "",
    until: Callable[[T], object] = bool,
) -> T:
    """Poll ``check`` (sync or async) until ``until`` accepts its value; return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if until(result):  # type: ignore[arg-type]
            return result  # type: ignore[return-value]
        if loop.time() >= deadline:
            raise _failure(what, check, timeout, result)
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], T],
    *,
    timeout: float = WAIT,
    interval: float = INTERVAL,
    what: str = "",
    until: Callable[[T], object] = bool,
) -> T:
    """``eventually`` outside an event loop: blocks the calling thread between checks."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if until(result):
            return result
        if time.monotonic() >= deadline:
            raise _failure(what, check, timeout, result)
        time.sleep(interval)
