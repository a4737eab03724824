"""Raft KV backend: the KV state machine replicated among the SC replicas by pysyncobj.

Writes are Raft commands (a follower's are forwarded to the Raft leader); each
node applies the log to its own copy, reads come from that copy, and watches are
fed from the entries it applied. The log and snapshots live in the data dir, so
a full restart of every node keeps every committed write.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pysyncobj import SyncObj, SyncObjConsumer

from election.guard import Guard
from election.raft_lease import RaftLeases, command
from election.raft_node import (
    CommandNotCommitted,
    is_connected,
    is_loopback_address,
    peer_node,
    raft_conf,
    submit,
)
from ha_sc.kv import raft_membership
from ha_sc.kv.api import Events, KvEntry, KvError, KvUnavailable, Listing, WatchEvent
from ha_sc.kv.change_signal import ChangeSignal, watch_history
from ha_sc.kv.state_machine import DEFAULT_HISTORY_SIZE, KvState, check_guard

log = logging.getLogger(__name__)

GuardArg = tuple[str, int] | None


@dataclass(frozen=True, slots=True)
class RaftSettings:
    """Raft timing. Defaults favour fast commits and elections on a local network."""

    append_entries_period: float = 0.005
    """Seconds between append-entries: a write commits on the next one."""
    auto_tick_period: float = 0.005
    """Seconds between ticks of the Raft thread."""
    election_timeout_min: float = 0.15
    """Lower bound of the randomized election timeout, seconds."""
    election_timeout_max: float = 0.35
    """Upper bound of the randomized election timeout, seconds."""
    connection_timeout: float = 1.0
    """A peer silent this long is considered disconnected."""
    connection_retry: float = 0.3
    """Seconds between reconnection attempts to a peer that is down."""
    commit_timeout: float = 5.0
    """A write not committed within this many seconds fails with KvUnavailable."""
    compaction_min_entries: int = 50_000
    """Log entries between snapshots."""


def _guard_arg(guard: Guard | None) -> GuardArg:
    return None if guard is None else (guard.election, guard.epoch)


class KvConsumer(SyncObjConsumer):  # type: ignore[misc]
    """The replicated part of the KV: ``state`` is what the log builds."""

    def __init__(self, leases: RaftLeases, signal: ChangeSignal, history_size: int) -> None:
        # attributes set before the base init are local, not replicated
        self.lock = threading.Lock()
        self._leases = leases
        self._signal = signal
        super().__init__()
        self.state = KvState(history_size=history_size)

    def _deserialize(self, data: Any) -> None:
        with self.lock:
            super()._deserialize(data)
        self._signal.notify()

    def _apply(self, guard: GuardArg, change: Callable[[], int]) -> int | KvError:
        with self.lock:
            try:
                check_guard(self._leases.table, None if guard is None else Guard(*guard))
                result: int | KvError = change()
            except KvError as refused:
                return refused
        self._signal.notify()
        return result

    @command
    def create(self, kind: str, key: str, value: bytes, guard: GuardArg) -> int | KvError:
        return self._apply(guard, lambda: self.state.create(kind, key, value))

    @command
    def update(
        self, kind: str, key: str, value: bytes, expected_revision: int, guard: GuardArg
    ) -> int | KvError:
        return self._apply(guard, lambda: self.state.update(kind, key, value, expected_revision))

    @command
    def delete(
        self, kind: str, key: str, expected_revision: int | None, guard: GuardArg
    ) -> int | KvError:
        return self._apply(guard, lambda: self.state.delete(kind, key, expected_revision))


class RaftKv:
    """One Raft node holding the KV (and the election lease table beside it)."""

    def __init__(
        self,
        self_address: str,
        partners: Sequence[str],
        data_dir: Path,
        *,
        settings: RaftSettings | None = None,
        history_size: int = DEFAULT_HISTORY_SIZE,
    ) -> None:
        self.settings = settings or RaftSettings()
        self.address = self_address
        data_dir.mkdir(parents=True, exist_ok=True)
        self._signal = ChangeSignal()
        self.leases = RaftLeases()
        self._consumer = KvConsumer(self.leases, self._signal, history_size)
        s = self.settings
        conf = raft_conf(
            self_address,
            appendEntriesPeriod=s.append_entries_period,
            autoTickPeriod=s.auto_tick_period,
            raftMinTimeout=s.election_timeout_min,
            raftMaxTimeout=s.election_timeout_max,
            connectionTimeout=s.connection_timeout,
            connectionRetryTime=s.connection_retry,
            logCompactionMinEntries=s.compaction_min_entries,
            journalFile=str(data_dir / "raft.journal"),
            fullDumpFile=str(data_dir / "raft.dump"),
        )
        if not is_loopback_address(self_address):
            log.warning(
                "raft node %s listens on a non-loopback address and its port is not"
                " authenticated: anyone who can reach it can run code in this process",
                self_address,
            )
        log.info("raft node %s starting, peers %s, data %s", self_address, partners, data_dir)
        self.node = SyncObj(
            self_address,
            [peer_node(p) for p in partners],
            conf=conf,
            consumers=[self._consumer, self.leases],
        )

    # node state

    def is_raft_leader(self) -> bool:
        return bool(self.node._isLeader())

    def raft_leader(self) -> str | None:
        leader = self.node._getLeader()
        return None if leader is None else str(leader)

    @property
    def revision(self) -> int:
        with self._consumer.lock:
            return self._consumer.state.revision

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until this node has a leader and has applied the log it knew at start."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (self.node.isReady() and self.node._getLeader() is not None):
            if loop.time() > deadline:
                raise KvUnavailable(
                    f"raft node {self.address}: no leader or not synced after {timeout:.0f}s"
                )
            await asyncio.sleep(0.01)

    def is_connected(self, raft_address: str) -> bool:
        return is_connected(self.node, raft_address)

    # the group's membership (see ha_sc.kv.raft_membership)

    def members(self) -> set[str]:
        return raft_membership.members(self.node)

    async def add_member(self, peer: str) -> bool:
        return await raft_membership.add_member(self.node, peer)

    async def remove_member(self, address: str) -> bool:
        return await raft_membership.remove_member(self.node, address)

    async def hand_over_leadership(self, to: str | None = None, timeout: float = 5.0) -> None:
        await raft_membership.hand_over_leadership(self.node, to=to, timeout=timeout)

    async def submit(self, method: Callable[..., Any], *args: Any) -> Any:
        """Run a replicated command; a KV refusal is raised as the KvError it is.

        A command that pysyncobj reports as not applied (no leader yet, leader
        changed before commit, discarded by a new leader) is sent again until
        ``commit_timeout``; one whose outcome is unknown (timeout) is not.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.commit_timeout
        while True:
            try:
                result = await submit(method, *args, timeout=deadline - loop.time())
                break
            except CommandNotCommitted as failed:
                if not failed.retryable or loop.time() + 0.05 >= deadline:
                    raise KvUnavailable(f"raft node {self.address}: command {failed}") from None
                await asyncio.sleep(0.05)
        if isinstance(result, KvError):
            raise result
        return result

    async def submit_lease(self, method: Callable[..., Any], *args: Any, timeout: float) -> Any:
        """Run a lease-table command (for the election on this node)."""
        return await submit(method, *args, timeout=timeout)

    # the KvStore interface

    async def list(self, kind: str) -> Listing:
        with self._consumer.lock:
            return self._consumer.state.list(kind)

    async def get(self, kind: str, key: str) -> KvEntry | None:
        with self._consumer.lock:
            return self._consumer.state.get(kind, key)

    async def create(self, kind: str, key: str, value: bytes, *, guard: Guard | None = None) -> int:
        result: int = await self.submit(self._consumer.create, kind, key, value, _guard_arg(guard))
        return result

    async def update(
        self,
        kind: str,
        key: str,
        value: bytes,
        *,
        expected_revision: int,
        guard: Guard | None = None,
    ) -> int:
        result: int = await self.submit(
            self._consumer.update, kind, key, value, expected_revision, _guard_arg(guard)
        )
        return result

    async def delete(
        self,
        kind: str,
        key: str,
        *,
        expected_revision: int | None = None,
        guard: Guard | None = None,
    ) -> int:
        result: int = await self.submit(
            self._consumer.delete, kind, key, expected_revision, _guard_arg(guard)
        )
        return result

    def watch(self, kind: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        return watch_history(self._read_since, self._signal, kind, start_revision)

    async def close(self) -> None:
        """Stop this node (its data dir keeps everything it committed)."""
        await asyncio.to_thread(self.node.destroy_synchronous)

    def _read_since(self, kind: str, start_revision: int) -> tuple[Events, int]:
        with self._consumer.lock:
            state = self._consumer.state
            return state.events_since(kind, start_revision), state.revision
