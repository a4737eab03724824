"""A candidate whose campaign and lease renewals run on a thread and event loop of their own.

A leader keeps its lease only while its renewals go out every renew interval
and their answers are seen before the renew deadline. On the replica's main
event loop they would queue behind whatever else it does: a burst of thousands
of writes, a controller pass, full syncs to reconnecting SPUs. On a busy
machine that delay alone ended terms (the loop fell 0.5 s behind and the
leader stepped down while nothing was wrong). Here the wrapped candidate runs
on its own loop, on its own thread: it needs the GIL only in short slices, so
its renewals keep time while the main loop is busy. Safety does not depend on
it: every write still carries the epoch's guard.

The main loop gets a ``MirroredTerm`` per won term: valid exactly while the
candidate's own term is (same deadline, read across threads), with its own
``lost`` event set from the election loop when the term ends. Ending the mirror
(say, a write was refused as stale) ends the candidate's term too.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from contextlib import suppress
from typing import Any, TypeVar

from election.api import Candidate
from election.term import LeaderInfo, Term

log = logging.getLogger("election")

T = TypeVar("T")

STOP_TIMEOUT = 10.0


class MirroredTerm(Term):
    """A term of the election thread, as the main loop sees it."""

    def __init__(self, inner: Term, election_loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._election_loop = election_loop
        super().__init__(inner.guard, valid_until=inner.valid_until)
        self.won_at = inner.won_at

    @property
    def valid_until(self) -> float:
        return self._inner.valid_until

    @valid_until.setter
    def valid_until(self, _: float) -> None:
        """The deadline is the candidate's own; renewals move it there."""

    def is_valid(self) -> bool:
        return (
            not self.lost.is_set()
            and not self._inner.lost.is_set()
            and time.monotonic() < self._inner.valid_until
        )

    def end(self, reason: str) -> None:
        if self.lost.is_set():
            return
        super().end(reason)
        with suppress(RuntimeError):  # the election loop is closed: its term ended with it
            self._election_loop.call_soon_threadsafe(self._inner.end, reason)


class ThreadedCandidate:
    """Runs ``inner`` (any Candidate) on a dedicated thread; usable from the main loop."""

    def __init__(self, inner: Candidate) -> None:
        self._inner = inner
        self.name = inner.name
        self.address = inner.address
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._run_task: asyncio.Task[None] | None = None
        self._mirror: MirroredTerm | None = None

    @property
    def term(self) -> Term | None:
        mirror = self._mirror
        return mirror if mirror is not None and mirror.is_valid() else None

    def leader(self) -> LeaderInfo | None:
        return self._inner.leader()

    async def run(self) -> None:
        """Run the campaign on its thread until cancelled or closed."""
        main = asyncio.get_running_loop()
        finished: asyncio.Future[None] = main.create_future()
        thread = threading.Thread(
            target=self._thread_main,
            args=(main, finished),
            name=f"election-{self.name}",
            daemon=True,
        )
        thread.start()
        try:
            await asyncio.shield(finished)
        except asyncio.CancelledError:
            self._stop_thread()
            await asyncio.to_thread(thread.join, STOP_TIMEOUT)
            raise

    async def wait_won(self) -> Term:
        inner = await self._on_election(self._inner.wait_won())
        loop = self._election_loop()
        main = asyncio.get_running_loop()
        mirror = self._mirror = MirroredTerm(inner, loop)

        async def relay_loss() -> None:
            await inner.lost.wait()
            reason = inner.lost_reason
            with suppress(RuntimeError):  # the main loop is gone
                main.call_soon_threadsafe(mirror.end, reason)

        asyncio.run_coroutine_threadsafe(relay_loss(), loop)
        return mirror

    async def resign(self) -> None:
        if self._loop is None:
            return
        await self._on_election(self._inner.resign())

    async def close(self) -> None:
        if self._loop is None:
            return
        await self._on_election(self._inner.close())

    # the election thread

    def _thread_main(self, main: asyncio.AbstractEventLoop, finished: asyncio.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        error: BaseException | None = None
        try:
            self._run_task = loop.create_task(self._inner.run(), name=f"campaign-{self.name}")
            self._started.set()
            loop.run_until_complete(self._run_task)
        except asyncio.CancelledError:
            pass
        except BaseException as failed:  # reported to the main loop's supervisor
            error = failed
        finally:
            self._started.set()
            _close(loop)

        def settle() -> None:
            if finished.done():
                return
            if error is not None:
                finished.set_exception(error)
            else:
                finished.set_result(None)

        try:
            main.call_soon_threadsafe(settle)
        except RuntimeError:
            log.debug("election thread of %s ended after the main loop", self.name)

    def _stop_thread(self) -> None:
        loop, task = self._loop, self._run_task
        if loop is not None and task is not None:
            with suppress(RuntimeError):  # already closed
                loop.call_soon_threadsafe(task.cancel)

    def _election_loop(self) -> asyncio.AbstractEventLoop:
        if not self._started.wait(STOP_TIMEOUT) or self._loop is None:
            raise RuntimeError(f"the election thread of {self.name} has not started")
        return self._loop

    async def _on_election(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the election loop and await its result here."""
        if not self._started.is_set():
            await asyncio.to_thread(self._started.wait, STOP_TIMEOUT)
        loop = self._election_loop()
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on ``loop`` and close it."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
