"""Raft KV backend: the KV state machine replicated among the SC replicas by pysyncobj.

Writes are Raft commands (a follower's are forwarded to the Raft leader); each
node applies the log to its own copy, reads come from that copy, and watches are
fed from the entries it applied. The log and snapshots live in the data dir, so
a full restart of every node keeps every committed write.

Every write carries its client-session tag (ha_sc.kv.session_table) and is sent
again under that tag until it is answered, so a write caught by a Raft leader
change, a timeout or a reconnect is applied exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pysyncobj import SyncObjConsumer

from election.guard import Guard
from election.raft_append import RaftSyncObj
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
from ha_sc.kv.api import (
    BatchOp,
    BatchOutcomes,
    Events,
    KvEntry,
    KvError,
    KvUnavailable,
    Listing,
    WatchEvent,
)
from ha_sc.kv.change_signal import ChangeSignal, watch_history
from ha_sc.kv.raft_snapshot import lower_snapshot_priority
from ha_sc.kv.session_table import CommandTag, SessionTable
from ha_sc.kv.session_writer import SessionWriter
from ha_sc.kv.state_machine import (
    DEFAULT_HISTORY_SIZE,
    KvState,
    OpRow,
    check_guard,
    op_rows,
)

log = logging.getLogger(__name__)

GuardArg = tuple[str, int] | None
TagArg = tuple[str, int, int, float] | None
"""A CommandTag as a plain tuple (what the log carries); None in entries written
before client sessions, which are applied as they are."""


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
    """A write not answered within this many seconds fails with KvUnavailable."""
    resend_after: float = 1.0
    """A write sent but not answered within this many seconds is sent again (same tag)."""
    compaction_min_entries: int = 50_000
    """Log entries between snapshots."""
    durable_journal: bool = True
    """Flush the journal, term and vote to disk before each Raft message is sent
    (election/raft_journal.py); off only to measure what the flush costs."""


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
        self.sessions = SessionTable()

    def _deserialize(self, data: Any) -> None:
        if "sessions" not in data:  # a snapshot from before client sessions
            data = {**data, "sessions": SessionTable()}
        with self.lock:
            super()._deserialize(data)
        self._signal.notify()

    def _apply(self, tag: TagArg, guard: GuardArg, change: Callable[[], object]) -> object:
        def checked() -> object:
            try:
                check_guard(self._leases.table, None if guard is None else Guard(*guard))
                return change()
            except KvError as refused:
                return refused

        with self.lock:
            answer = checked() if tag is None else self.sessions.run(CommandTag(*tag), checked)
        if not isinstance(answer, KvError):
            self._signal.notify()
        return answer

    @command
    def batch(self, rows: tuple[OpRow, ...], guard: GuardArg, tag: TagArg = None) -> object:
        """Every op of a batch in one log entry (``op_rows``); the guard checked once,
        before any op."""
        return self._apply(tag, guard, lambda: self.state.apply_rows(rows))

    @command
    def create(
        self, kind: str, key: str, value: bytes, guard: GuardArg, tag: TagArg = None
    ) -> object:
        return self._apply(tag, guard, lambda: self.state.create(kind, key, value))

    @command
    def update(
        self,
        kind: str,
        key: str,
        value: bytes,
        expected_revision: int,
        guard: GuardArg,
        tag: TagArg = None,
    ) -> object:
        return self._apply(
            tag, guard, lambda: self.state.update(kind, key, value, expected_revision)
        )

    @command
    def delete(
        self,
        kind: str,
        key: str,
        expected_revision: int | None,
        guard: GuardArg,
        tag: TagArg = None,
    ) -> object:
        return self._apply(tag, guard, lambda: self.state.delete(kind, key, expected_revision))


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
        secret: str | None = None,
    ) -> None:
        self.settings = settings or RaftSettings()
        self.address = self_address
        data_dir.mkdir(parents=True, exist_ok=True)
        self._signal = ChangeSignal()
        self.leases = RaftLeases()
        self._consumer = KvConsumer(self.leases, self._signal, history_size)
        self._writer = SessionWriter(
            f"raft node {self_address}",
            commit_timeout=self.settings.commit_timeout,
            resend_after=self.settings.resend_after,
        )
        lower_snapshot_priority()
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
            password=secret,
        )
        if secret is None and not is_loopback_address(self_address):
            log.warning(
                "raft node %s listens on a non-loopback address and its port is not"
                " authenticated: anyone who can reach it can run code in this process",
                self_address,
            )
        log.info(
            "raft node %s starting, peers %s, data %s, traffic %s",
            self_address,
            partners,
            data_dir,
            "unauthenticated" if secret is None else "encrypted with the group secret",
        )
        self.node = RaftSyncObj(
            self_address,
            [peer_node(p) for p in partners],
            conf=conf,
            consumers=[self._consumer, self.leases],
            durable=s.durable_journal,
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
        """Run a replicated command without a session tag (lease commands); a KV refusal
        is raised as the KvError it is.

        A command that pysyncobj reports as not applied (no leader yet, not the
        leader, discarded by a new leader, queue full) is sent again until
        ``commit_timeout``; one whose outcome is unknown (timeout, leader changed
        before answering) is not. KV writes go through ``write`` instead.
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

    async def write(self, method: Callable[..., Any], *args: Any) -> int:
        """Run a KV write exactly once (see ha_sc.kv.session_writer): sent again under
        its client-session tag after any failure until answered or ``commit_timeout``;
        a copy that reaches the state machine after the first gets the first's answer."""
        return await self._writer.write(method, *args)

    @property
    def resent(self) -> int:
        """Writes this node has sent more than once (each applied once all the same)."""
        return self._writer.resent

    def fingerprint(self) -> tuple[int, str, str]:
        """This replica's revision and digests of its objects and of its session table
        (see ``KvState.fingerprint``), read at one point of the log."""
        with self._consumer.lock:
            consumer = self._consumer
            return (
                consumer.state.revision,
                consumer.state.fingerprint(),
                consumer.sessions.fingerprint(),
            )

    @property
    def commands(self) -> KvConsumer:
        """The replicated KV commands (``create``, ``update``, ``delete``, ``batch``), to send one
        with an explicit tag through ``submit``: what a copy of a write carries."""
        return self._consumer

    def session_of(self, client: str) -> tuple[int, dict[int, object]] | None:
        """What the state machine on this node keeps of ``client``: its floor and the
        answers it would give to copies of its writes."""
        with self._consumer.lock:
            session = self._consumer.sessions.session(client)
            return None if session is None else (session.floor, dict(session.answers))

    async def submit_lease(self, method: Callable[..., Any], *args: Any, timeout: float) -> Any:
        """Run a lease-table command (for the election on this node)."""
        return await submit(method, *args, timeout=timeout)

    # the KvStore interface

    async def list(self, kind: str) -> Listing:
        with self._consumer.lock:
            listing = self._consumer.state.listing(kind)
        return listing()  # built with the lock released: the Raft thread goes on

    async def get(self, kind: str, key: str) -> KvEntry | None:
        with self._consumer.lock:
            return self._consumer.state.get(kind, key)

    async def create(self, kind: str, key: str, value: bytes, *, guard: Guard | None = None) -> int:
        return await self.write(self._consumer.create, kind, key, value, _guard_arg(guard))

    async def update(
        self,
        kind: str,
        key: str,
        value: bytes,
        *,
        expected_revision: int,
        guard: Guard | None = None,
    ) -> int:
        return await self.write(
            self._consumer.update, kind, key, value, expected_revision, _guard_arg(guard)
        )

    async def delete(
        self,
        kind: str,
        key: str,
        *,
        expected_revision: int | None = None,
        guard: Guard | None = None,
    ) -> int:
        return await self.write(
            self._consumer.delete, kind, key, expected_revision, _guard_arg(guard)
        )

    async def write_batch(
        self, ops: Sequence[BatchOp], *, guard: Guard | None = None
    ) -> BatchOutcomes:
        """One Raft command for the whole batch, exactly once like the single writes."""
        if not ops:
            return []
        return await self._writer.write_batch(self._consumer.batch, op_rows(ops), _guard_arg(guard))

    def watch(self, kind: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        return watch_history(self._read_since, self._signal, kind, start_revision)

    async def close(self) -> None:
        """Stop this node (its data dir keeps everything it committed)."""
        await asyncio.to_thread(self.node.destroy_synchronous)

    def _read_since(self, kind: str, start_revision: int) -> tuple[Events, int]:
        with self._consumer.lock:
            state = self._consumer.state
            return state.events_since(kind, start_revision), state.revision
