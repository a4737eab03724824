"""One partition replica this SPU hosts: its log, its cached offsets, the waits on them.

The log (``storage.ReplicaLog``) does blocking file I/O, so every call to it runs on
the data plane's I/O threads. Calls that change it run one at a time per replica, in
the order they were made, and finish (the cached offsets brought up to date) even when
the caller is cancelled; reads run beside them. The log is opened when the replica is
added if its directory exists, and otherwise created by the first write: a replica that
never held a record costs no file. A directory written for an earlier partition of the
same key (another ``generation``, see ``generation.py``) is deleted before opening.
After a storage error the log is closed; the next call opens it again, which recovers
it from its files.

The event loop reads only the cached offsets (``leo``, ``synced_leo``, ``hw``,
``log_start``); the high watermark is decided here (by the leader's ISR, or the
follower's fetches) and handed to the log on its next call. A leader's group write
moves ``leo`` as soon as its batches are written to the OS, before its fsync, so
followers fetch them while the leader's disk works (``note_written``); ``synced_leo``
follows once the write is settled by the fsync policy, and only it counts for the HW.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import TypeVar

from ha_sc.spu.dataplane.generation import mark_generation, written_for_another
from ha_sc.spu.dataplane.producer_state import ProducerTable
from ha_sc.spu.dataplane.waiting import ChangeSignal
from ha_sc.spu.storage import LogClosed, LogSettings, ReplicaLog, StorageError

log = logging.getLogger("ha_sc.spu.dataplane")

T = TypeVar("T")


class Replica:
    """One hosted partition replica, by its key ``<topic>-<partition>``."""

    def __init__(
        self,
        key: str,
        directory: Path,
        *,
        log_settings: LogSettings,
        io: Executor,
        tail_bytes: int,
        hw_moved: set[Replica] | None = None,
        moved: set[str] | None = None,
        generation: int | None = None,
    ) -> None:
        self.key = key
        self.generation = generation
        """The partition's identity in the store (None: not known, any log is its own)."""
        self._hw_moved = hw_moved
        self.directory = directory
        self._log_settings = log_settings
        self._io = io
        self._tail_bytes = tail_bytes
        self._log: ReplicaLog | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self.producers = ProducerTable()
        """Idempotent producers' last batches; touched only by calls that hold the log."""
        self.leo = 0
        """The log's end as written to the OS: what followers may read."""
        self.synced_leo = 0
        """The log's end as its fsync policy has settled it (fsynced under ``always``);
        the leader's own LEO when it computes the HW. Behind ``leo`` only while a
        leader's group is being fsynced (``note_written``)."""
        self.hw = 0
        self.log_start = 0
        self.changes = ChangeSignal(on_fire=None if moved is None else lambda: moved.add(key))
        """Fired when the LEO, the HW, the replica's role or its in-sync set changes
        (and ``key`` added to ``moved``: its status report may have changed)."""

    @property
    def log_settings(self) -> LogSettings:
        return self._log_settings

    def set_log_settings(self, settings: LogSettings) -> None:
        """Use ``settings`` from now on (the topic's segment size or retention changed):
        the open log takes them at its next call (it reads them per call), a log opened
        later opens with them. Segments already written keep their size."""
        self._log_settings = settings
        current = self._log
        if current is not None:
            current.settings = settings

    async def enforce_retention(self, now: float) -> list[int]:
        """Delete the closed segments retention lets go (``ReplicaLog.enforce_retention``,
        on an I/O thread); the base offsets of those deleted. Nothing without a log."""

        def enforce() -> list[int]:
            current = self._log
            if current is None:
                return []
            try:
                return current.enforce_retention(now)
            except (OSError, StorageError):
                self._drop(current)
                raise

        if self._log is None or self._closed:
            return []
        return await self._exclusive(enforce)

    @property
    def has_log(self) -> bool:
        return self._log is not None

    @property
    def closed(self) -> bool:
        return self._closed

    async def load(self) -> None:
        """Open the log if this replica has one on disk (a restart); else nothing."""
        if self.directory.is_dir():
            await self._exclusive(self._load)

    async def mutate(self, change: Callable[[ReplicaLog], T]) -> T:
        """Run ``change`` on the log (opened, or created, first), after every earlier one."""
        return await self._exclusive(lambda: self._run(change))

    async def sync_hw(self) -> bool:
        """Hand the cached HW to the log, if it has one; True once its checkpoint holds it
        (the log writes the checkpoint at most once per ``hw_checkpoint_interval``, so a
        caller asks again later while this is False)."""
        current = self._log
        if current is None:
            return True
        hw = min(self.hw, self.leo)
        if current.hw != hw or current.checkpointed_hw != hw:
            await self._exclusive(lambda: self._log is not None and self._push_hw(self._log))
        return current.checkpointed_hw == hw

    async def read(self, offset: int, max_bytes: int, upper: int) -> bytes:
        """Whole batches from the one holding ``offset``, stopping before ``upper``."""
        current = self._log
        if current is None or offset >= upper:
            return b""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io, current.read, offset, max_bytes, upper)

    async def cut(self, offset: int) -> None:
        """Truncate the log at ``offset`` (see ``truncate_log``)."""
        if offset < self.leo:
            await self.mutate(lambda current: self.truncate_log(current, offset))

    def truncate_log(self, current: ReplicaLog, offset: int) -> None:
        """Drop the batches from ``offset`` on and rebuild the producers' sequences from
        what is left (on an I/O thread, inside ``mutate``)."""
        current.truncate_to(offset)
        self.producers = ProducerTable.from_headers(current.tail_headers(self._tail_bytes))

    def note_written(self, leo: int) -> None:
        """The change running on the I/O threads has written the log up to ``leo`` and
        is fsyncing it: followers may read up to there now (on the event loop; the
        change's end brings ``synced_leo`` along)."""
        if leo > self.leo and not self._closed:
            self.leo = leo
            self.changes.fire()

    def set_hw(self, hw: int) -> None:
        """The HW moved (leader's ISR or follower's fetch): waiters wake."""
        if hw != self.hw:
            self.hw = hw
            if self._hw_moved is not None:
                self._hw_moved.add(self)
            self.changes.fire()

    async def close(self, *, delete: bool = False) -> None:
        """Flush and close the log (deleting its directory if asked); no call after this."""

        def close() -> None:
            current, self._log = self._log, None
            if current is not None:
                try:
                    self._push_hw(current)
                finally:
                    current.close()
            if delete:
                shutil.rmtree(self.directory, ignore_errors=True)

        try:
            if self._log is not None or delete:
                await self._exclusive(close)
        finally:
            self._closed = True
            self.changes.fire()

    # inside the I/O threads

    def _load(self) -> None:
        if self._log is None and self.directory.is_dir():
            self._open()

    def _open(self) -> ReplicaLog:
        self._forget_another_generation()
        opened = ReplicaLog.open(self.directory, self._log_settings)
        try:
            mark_generation(self.directory, self.generation)
        except OSError:
            opened.close()
            raise
        try:
            self.producers = ProducerTable.from_headers(opened.tail_headers(self._tail_bytes))
        except BaseException:
            opened.close()
            raise
        self._log = opened
        if self.hw == 0:
            self.hw = opened.hw  # the checkpoint, read in this thread: set before the refresh
        return opened

    def _forget_another_generation(self) -> None:
        """Delete the directory if it holds the log of an earlier partition of this key."""
        other = written_for_another(self.directory, self.generation)
        if other is not None:
            shutil.rmtree(self.directory)
            log.warning(
                "replica %s: deleted the log of an earlier partition %s (generation %d); "
                "this one (generation %d) starts empty",
                self.key,
                self.key,
                other,
                self.generation,
            )

    def _run(self, change: Callable[[ReplicaLog], T]) -> T:
        current = self._log or self._open()
        try:
            self._push_hw(current)
            return change(current)
        except (OSError, StorageError):
            self._drop(current)
            raise

    def _drop(self, current: ReplicaLog) -> None:
        """After a storage error: close the log; the next call reopens (recovers) it."""
        self._log = None
        with contextlib.suppress(OSError, StorageError):  # closed by a failed fsync
            current.close()

    def _push_hw(self, current: ReplicaLog) -> bool:
        hw = min(self.hw, current.leo)
        if current.hw != hw or current.checkpointed_hw != hw:
            current.set_hw(hw)
        return True

    # on the event loop

    async def _exclusive(self, call: Callable[[], T]) -> T:
        async with self._lock:
            if self._closed:
                raise LogClosed(f"replica {self.key} is closed")
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._io, call)
            try:
                return await _finished(future)
            finally:
                self._refresh()

    def _refresh(self) -> None:
        current = self._log
        leo, start = (current.leo, current.log_start_offset) if current is not None else (0, 0)
        synced = leo
        if current is None and not self.directory.exists():
            leo = start = synced = 0
        elif current is None:
            leo, start = self.leo, self.log_start  # closed after an error: keep the last known
            synced = min(self.synced_leo, leo)  # what was written, not fsynced, stays so
        changed = (leo, start) != (self.leo, self.log_start) or self.hw > leo
        self.leo, self.log_start, self.synced_leo = leo, start, synced
        self.hw = min(self.hw, leo)
        if changed:
            self.changes.fire()


async def _finished(future: asyncio.Future[T]) -> T:
    """``future``'s result; if the caller is cancelled meanwhile, still wait for it to
    finish (a thread cannot be stopped) before the cancellation goes on."""
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                continue
            except Exception:  # the caller is gone; its cancellation is what counts
                break
        raise
