"""Named, supervised background tasks: a failure is logged and never silent; and the
"first of several, cancel the rest" race between named tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """Why the supervisor gave up: which task ended, and how."""

    task_name: str
    error: BaseException | None
    """The exception it raised; None when a critical task returned."""

    def __str__(self) -> str:
        if self.error is None:
            return f"task {self.task_name} ended though it must run until stopped"
        return f"task {self.task_name} failed: {self.error!r}"


FatalHandler = Callable[[TaskFailure], None]


def _log_fatal(failure: TaskFailure) -> None:
    logger.critical("%s; stopping the replica", failure)


class Supervisor:
    """Starts named asyncio tasks and reacts when one of them ends.

    A critical task (the default) must run until ``stop``: if it raises or
    returns, the failure is logged with its traceback, recorded, ``failed`` is
    set (the main program awaits it, or ``wait_failed``) and ``on_fatal`` is
    called (default: log at critical). A non-critical task that raises is
    logged the same way but is not fatal.
    """

    def __init__(self, *, on_fatal: FatalHandler = _log_fatal) -> None:
        self._on_fatal = on_fatal
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._critical: set[str] = set()
        self._stopping = False
        self._failure: TaskFailure | None = None
        self.failed = asyncio.Event()
        """Set when the first critical task fails."""

    @property
    def tasks(self) -> Mapping[str, asyncio.Task[Any]]:
        """Running tasks by name."""
        return MappingProxyType(dict(self._tasks))

    @property
    def failure(self) -> TaskFailure | None:
        """The first fatal failure, if any."""
        return self._failure

    def start(
        self, name: str, coro: Coroutine[Any, Any, T], *, critical: bool = True
    ) -> asyncio.Task[T]:
        """Run ``coro`` as the task ``name``; names are unique among running tasks."""
        if self._stopping:
            coro.close()
            raise RuntimeError(f"supervisor is stopping: task {name} not started")
        if name in self._tasks:
            coro.close()
            raise ValueError(f"a task named {name} is already running")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks[name] = task
        if critical:
            self._critical.add(name)
        task.add_done_callback(self._task_done)
        logger.debug("task %s started", name)
        return task

    async def wait_failed(self) -> TaskFailure:
        """Return the first fatal failure once there is one."""
        await self.failed.wait()
        assert self._failure is not None
        return self._failure

    async def stop(self) -> None:
        """Cancel every running task and wait for them to end."""
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        logger.debug("supervisor stopped %d tasks", len(tasks))

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        name = task.get_name()
        if self._tasks.get(name) is task:
            del self._tasks[name]
        critical = name in self._critical
        self._critical.discard(name)
        if task.cancelled():
            logger.debug("task %s cancelled", name)
            return
        error = task.exception()
        if error is not None:
            logger.error("task %s failed", name, exc_info=error)
        elif not critical or self._stopping:
            logger.debug("task %s finished", name)
            return
        if critical and not self._stopping:
            self._fatal(TaskFailure(name, error))

    def _fatal(self, failure: TaskFailure) -> None:
        if self._failure is None:
            self._failure = failure
        self.failed.set()
        try:
            self._on_fatal(failure)
        except Exception:
            logger.exception("fatal handler failed for %s", failure)


async def first_of(coros: Mapping[str, Coroutine[Any, Any, T]]) -> T:
    """Run the coroutines as tasks named by their keys; return the first one's result
    and cancel the rest (waiting until they have ended).

    When several finish together the earliest in ``coros``' order wins. The winner's
    exception propagates (a supervisor above logs it); so does its cancellation, and
    cancelling the caller cancels every task."""
    if not coros:
        raise ValueError("first_of needs at least one coroutine")
    tasks = [asyncio.create_task(coro, name=name) for name, coro in coros.items()]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    first = next(task for task in tasks if task in done)
    if first.cancelled():
        raise asyncio.CancelledError
    return first.result()


async def until_first(
    coros: Mapping[str, Coroutine[Any, Any, object]], *, timeout: float | None = None
) -> None:
    """Return once the first of the coroutines (run as tasks named by their keys) ends,
    however it ends, or after ``timeout`` seconds; the rest are cancelled and awaited.

    For waits on several signals where only "something happened" matters (a store
    changed, the term was lost, a connection closed): the caller looks again."""
    tasks = [asyncio.create_task(coro, name=name) for name, coro in coros.items()]
    if not tasks:
        return
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
