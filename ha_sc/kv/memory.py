"""Single-process KV backend, for unit tests and one-replica experiments."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from election.guard import Guard
from election.lease_table import LeaseTable
from ha_sc.kv.api import BatchOp, BatchOutcomes, Events, KvEntry, Listing, WatchEvent
from ha_sc.kv.change_signal import ChangeSignal, watch_history
from ha_sc.kv.state_machine import DEFAULT_HISTORY_SIZE, KvState, check_guard


class MemoryKv:
    """The KV state machine applied directly, in this process."""

    def __init__(self, *, history_size: int = DEFAULT_HISTORY_SIZE) -> None:
        self._state = KvState(history_size=history_size)
        self._signal = ChangeSignal()
        self.leases = LeaseTable()
        """The lease table that fenced writes are checked against."""

    @property
    def revision(self) -> int:
        return self._state.revision

    async def list(self, kind: str) -> Listing:
        return self._state.list(kind)

    async def get(self, kind: str, key: str) -> KvEntry | None:
        return self._state.get(kind, key)

    async def create(self, kind: str, key: str, value: bytes, *, guard: Guard | None = None) -> int:
        check_guard(self.leases, guard)
        revision = self._state.create(kind, key, value)
        self._signal.notify()
        return revision

    async def update(
        self,
        kind: str,
        key: str,
        value: bytes,
        *,
        expected_revision: int,
        guard: Guard | None = None,
    ) -> int:
        check_guard(self.leases, guard)
        revision = self._state.update(kind, key, value, expected_revision)
        self._signal.notify()
        return revision

    async def delete(
        self,
        kind: str,
        key: str,
        *,
        expected_revision: int | None = None,
        guard: Guard | None = None,
    ) -> int:
        check_guard(self.leases, guard)
        revision = self._state.delete(kind, key, expected_revision)
        self._signal.notify()
        return revision

    async def write_batch(
        self, ops: Sequence[BatchOp], *, guard: Guard | None = None
    ) -> BatchOutcomes:
        check_guard(self.leases, guard)
        outcomes = self._state.apply_batch(ops)
        self._signal.notify()
        return outcomes

    def watch(self, kind: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        return watch_history(self._read_since, self._signal, kind, start_revision)

    async def close(self) -> None:
        return None

    def _read_since(self, kind: str, start_revision: int) -> tuple[Events, int]:
        return self._state.events_since(kind, start_revision), self._state.revision
