"""The partition replicas this SPU hosts, kept in line with the SC's replica specs.

Level-triggered: whenever the control state changes, ``reconcile`` compares what it
hosts with the replica table (on its first call every replica, later the partitions the
table changed since) and brings each replica to the role the SC gave it:

- **added**: its log is opened if it has one on disk (a restart); then it leads or
  follows as below.
- **leads** (added as leader, or promoted): it serves produce and counts its
  followers' fetches. Added as leader, it takes every follower as in sync until it
  hears otherwise (``lag_time``); promoted, every follower but the old leader. It
  serves from its own LEO: nothing is cut.
- **follows** (added as follower, demoted, or told of another leader): a leader steps
  down first (queued and waiting produces are answered ``not_leader``, the group being
  written completes); it leaves the fetch session of an earlier leader (nothing from
  that leader touches it again); the log is cut at the replica's own HW
  (``truncation.py``); then it joins the fetch session with its leader
  (``follower_session.py``: one per leader SPU, for every partition followed from it).
- **removed**: it stops serving and its log is deleted.
- **replaced** (same key, another partition: its topic was deleted and created again):
  removed, then added; the new replica starts empty (also after a restart: the log
  directory records its partition's generation, see ``generation.py``).

Every replica's log uses the segment size and retention of its spec (the topic's
``storage`` settings), from when it is opened; a changed spec changes them in place
(segments already written keep their size). ``enforce_retention`` deletes what
retention lets go, for the plane's periodic retention task.

Nothing here waits on the SC: the replicas keep their roles while no SC is reachable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from ha_sc.protocol import ReplicaStorage
from ha_sc.protocol.data import DataError, ErrorCode
from ha_sc.spu.control_state import ControlState
from ha_sc.spu.dataplane.follower_session import FollowerSession
from ha_sc.spu.dataplane.leader import PartitionLeadership
from ha_sc.spu.dataplane.link import LeaderLink
from ha_sc.spu.dataplane.replica import Replica
from ha_sc.spu.dataplane.transition_log import TransitionLog
from ha_sc.spu.dataplane.truncation import cut_to_follow
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from ha_sc.spu.replica_table import LocalReplica, ReplicaRole
from ha_sc.spu.storage import LogSettings, StorageError
from ha_sc.spu.storage.settings import MAX_SEGMENT_BYTES

log = logging.getLogger("ha_sc.spu.dataplane")

RECONCILE_SLICE = 200
"""Replicas brought in line between two turns of the event loop: adding one that has no
log on disk awaits nothing, so 66k of them held the loop for seconds."""


@dataclass(eq=False)
class Hosted:
    """One replica and the role it plays now."""

    replica: Replica
    spec: LocalReplica
    leadership: PartitionLeadership | None = None
    following: int | None = None
    """The leader SPU whose fetch session replicates it, while it follows."""
    opened: bool = False
    """Adding it opened its log (or found none on disk)."""

    @property
    def loaded(self) -> bool:
        """Its offsets are real: its log, if it has one, is open."""
        return self.opened or self.replica.has_log


class ReplicaRegistry:
    """Hosted replicas by partition key."""

    def __init__(
        self,
        state: ControlState,
        logs_dir: Path,
        settings: DataPlaneSettings,
        io: Executor,
        *,
        connect_timeout: float = 1.0,
        fetch_key: bytes | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``fetch_key``: this SPU's own replica-fetch key, proving its id to the leaders
        it follows (None: it proves nothing). ``tls``: the context leader links dial
        with (None: plain TCP)."""
        self._state = state
        self._fetch_key = fetch_key
        self._spu_id = state.spu_id
        self._logs_dir = logs_dir
        self._settings = settings
        self._io = io
        self._connect_timeout = connect_timeout
        self._tls = tls
        self._log_settings = LogSettings(fsync=settings.fsync)
        self._hosted: dict[str, Hosted] = {}
        self._links: dict[int, LeaderLink] = {}
        self._sessions: dict[int, tuple[FollowerSession, asyncio.Task[None]]] = {}
        """The fetch session with each leader SPU followed, and the task running it."""
        self.watched: set[PartitionLeadership] = set()
        """Leaderships that time alone may change (see ``PartitionLeadership``)."""
        self.hw_moved: set[Replica] = set()
        """Replicas whose HW moved since their log last heard of it."""
        self.offsets_moved: set[str] = set()
        """Partitions whose reported offsets may have changed since the last status report."""
        self._touched: set[str] | None = None
        """Partitions the replica table changed since ``reconcile`` last looked (None:
        it has not looked yet)."""
        self._transitions = TransitionLog(log)

    def get(self, key: str) -> Hosted | None:
        return self._hosted.get(key)

    def __iter__(self) -> Iterator[Hosted]:
        return iter(list(self._hosted.values()))

    def __len__(self) -> int:
        return len(self._hosted)

    @property
    def connected_to_sc(self) -> bool:
        return self._state.sc_address is not None

    def not_leader(self, key: str) -> DataError:
        """The answer of a replica that does not lead ``key`` (or of an SPU that does not
        hold it but knows who leads)."""
        spec = self._state.replicas.get(key)
        if spec is None:
            return DataError(
                code=ErrorCode.UNKNOWN_PARTITION, message=f"spu {self._spu_id} has no {key}"
            )
        leader = spec.leader
        leader_spec = self._state.spus.get(leader)
        address = str(leader_spec.public_endpoint) if leader_spec is not None else None
        return DataError(
            code=ErrorCode.NOT_LEADER,
            message=f"spu {self._spu_id} does not lead {key}; spu {leader} does",
            leader=leader,
            leader_address=address,
        )

    async def reconcile(self) -> None:
        """Bring the hosted replicas in line with the replica table, as it is now.

        The first call compares every replica; later ones only the partitions the table
        says were added, changed or removed since (an SPU holding tens of thousands of
        replicas gets deltas of a few while a store fills)."""
        table = self._state.replicas
        if self._touched is None:
            self._touched = table.touched_feed()
            keys = set(self._hosted) | {spec.partition for spec in table.replicas()}
        else:
            keys = set(self._touched)
        self._touched.difference_update(keys)
        # removals first, then the rest in key order
        pending = sorted(keys, key=lambda key: (key in table, key))
        done = 0
        try:
            for key in pending:
                await self._reconcile_one(key, table.get(key))
                done += 1
                if done % RECONCILE_SLICE == 0:
                    await asyncio.sleep(0)  # a full sync adds 66k: let the loop run
        except BaseException:
            self._touched.update(pending[done:])  # not handled: the next call takes them
            raise
        finally:
            self._transitions.flush()

    async def _reconcile_one(self, key: str, spec: LocalReplica | None) -> None:
        hosted = self._hosted.get(key)
        if spec is None:
            if hosted is not None:
                await self._remove(key)
        elif hosted is None:
            await self._add(spec)
        elif hosted.spec.is_another_partition(spec):
            await self._remove(key)
            await self._add(spec)
        elif hosted.spec != spec:
            same_role = dataclasses.replace(
                hosted.spec, storage=spec.storage, generation=spec.generation
            )
            if same_role == spec:
                self._set_storage(hosted, spec)  # only the storage settings changed
            else:
                await self._take_role(hosted, spec)

    def log_settings(self, storage: ReplicaStorage) -> LogSettings:
        """The log settings of a replica with ``storage`` settings (the SPU's fsync policy;
        what the topic does not set keeps the default)."""
        base = self._log_settings
        return dataclasses.replace(
            base,
            segment_bytes=min(storage.segment_size or base.segment_bytes, MAX_SEGMENT_BYTES),
            retention_seconds=storage.retention_time_seconds,
            retention_bytes=storage.max_partition_size,
        )

    async def enforce_retention(self, now: float) -> int:
        """Delete, in every hosted replica whose topic sets a retention, the closed segments
        retention lets go (on the I/O threads); ``now`` is seconds since the epoch.
        Returns how many segments went."""
        deleted = 0
        for hosted in self:
            replica = hosted.replica
            if hosted.spec.storage.retains_all or not replica.has_log or replica.closed:
                continue
            try:
                bases = await replica.enforce_retention(now)
            except (OSError, StorageError) as exc:
                log.warning("%s: retention could not delete old segments: %s", replica.key, exc)
                continue
            if bases:
                deleted += len(bases)
                log.info(
                    "%s: retention removed %d segment%s, log now starts at %d",
                    replica.key,
                    len(bases),
                    "" if len(bases) == 1 else "s",
                    replica.log_start,
                )
        return deleted

    async def close(self) -> None:
        """Stop serving and replicating; close every log (its data stays)."""
        for key, hosted in list(self._hosted.items()):
            error = DataError(code=ErrorCode.NOT_LEADER, message=f"spu {self._spu_id} stopping")
            await self._release(hosted, error)
            try:
                await hosted.replica.close()
            except (OSError, StorageError) as exc:
                log.warning("replica %s: closing its log failed: %s", key, exc)
        self._hosted.clear()
        sessions, self._sessions = list(self._sessions.values()), {}
        for _, task in sessions:
            task.cancel()
        await asyncio.gather(*(task for _, task in sessions), return_exceptions=True)
        links, self._links = list(self._links.values()), {}
        for link in links:
            await link.close()

    # transitions

    async def _add(self, spec: LocalReplica) -> None:
        key = spec.partition
        replica = Replica(
            key,
            self._logs_dir / key,
            log_settings=self.log_settings(spec.storage),
            io=self._io,
            tail_bytes=self._settings.producer_tail_bytes,
            hw_moved=self.hw_moved,
            moved=self.offsets_moved,
            generation=spec.generation,
        )
        hosted = Hosted(replica, spec)
        self._hosted[key] = hosted
        try:
            await replica.load()
        except (OSError, StorageError) as exc:
            # reported by its checkpoint (a lower bound) until a write opens it after all
            log.warning("replica %s: cannot open its log (tried again on use): %s", key, exc)
        else:
            hosted.opened = True
        await self._take_role(hosted, spec, added=True)

    async def _take_role(self, hosted: Hosted, spec: LocalReplica, *, added: bool = False) -> None:
        before = None if added else hosted.spec
        self._set_storage(hosted, spec)
        others = [spu for spu in spec.replicas if spu != self._spu_id]
        if spec.role is ReplicaRole.LEADER:
            if hosted.leadership is not None:
                hosted.leadership.set_followers(others)
            else:
                await self._stop_following(hosted)
                old_leader = before.leader if before is not None else None
                self._lead(hosted, others, assumed=[s for s in others if s != old_leader])
        elif (
            before is not None
            and before.role is ReplicaRole.FOLLOWER
            and before.leader == spec.leader
            and hosted.following is not None
        ):
            pass  # only the replica list changed
        else:
            error = self.not_leader(spec.partition)
            await self._release(hosted, error)
            await self._follow(hosted, spec.leader)
        hosted.replica.changes.fire()

    def _set_storage(self, hosted: Hosted, spec: LocalReplica) -> None:
        before, hosted.spec = hosted.spec, spec
        hosted.replica.generation = spec.generation
        if before.storage != spec.storage:
            hosted.replica.set_log_settings(self.log_settings(spec.storage))

    def _lead(self, hosted: Hosted, followers: list[int], *, assumed: list[int]) -> None:
        replica = hosted.replica
        hosted.leadership = PartitionLeadership(
            replica,
            followers,
            assumed_in_sync_followers=assumed,
            settings=self._settings,
            may_shrink=lambda: self.connected_to_sc,
            watched=self.watched,
        )
        self._transitions.note(
            "led",
            "became leader of %s (leo %d, hw %d; followers %s, taken as in sync %s)",
            replica.key,
            replica.leo,
            replica.hw,
            followers or "none",
            sorted(hosted.leadership.isr) or "none",
        )

    async def _follow(self, hosted: Hosted, leader: int) -> None:
        replica = hosted.replica
        cut = cut_to_follow(replica.hw, replica.leo)
        if cut is not None:
            log.info(
                "replica %s: cutting %d records above the high watermark %d before following",
                replica.key,
                replica.leo - cut,
                cut,
            )
            try:
                await replica.cut(cut)
            except (OSError, StorageError) as exc:
                log.warning("replica %s: cannot cut its log: %s", replica.key, exc)
        self._session_with(leader).add(replica)
        hosted.following = leader
        self._transitions.note(
            "followed", "replica %s follows spu %d from offset %d", replica.key, leader, replica.leo
        )

    def _session_with(self, leader: int) -> FollowerSession:
        """The fetch session with leader SPU ``leader`` (started on first use)."""
        running = self._sessions.get(leader)
        if running is not None:
            return running[0]
        link = self._links.get(leader)
        if link is None:
            link = self._links[leader] = LeaderLink(
                leader,
                lambda: self._private_address(leader),
                connect_timeout=self._connect_timeout,
                follower=self._spu_id,
                fetch_key=self._fetch_key,
                tls=self._tls,
            )
        session = FollowerSession(self._spu_id, leader, link, self._settings)
        task = asyncio.create_task(session.run(), name=f"fetch session with spu {leader}")
        task.add_done_callback(_log_end)
        self._sessions[leader] = (session, task)
        return session

    async def _release(self, hosted: Hosted, error: DataError) -> None:
        """Stop leading (answering what waits with ``error``) and following."""
        leadership, hosted.leadership = hosted.leadership, None
        if leadership is not None:
            leadership.step_down(error)
            await leadership.produce.wait_idle()
            log.info("replica %s: stepped down as leader (%s)", hosted.replica.key, error.message)
        await self._stop_following(hosted)

    async def _stop_following(self, hosted: Hosted) -> None:
        leader, hosted.following = hosted.following, None
        running = self._sessions.get(leader) if leader is not None else None
        if running is not None:
            await running[0].remove(hosted.replica.key)

    async def _remove(self, key: str) -> None:
        hosted = self._hosted.pop(key)
        error = DataError(code=ErrorCode.UNKNOWN_PARTITION, message=f"{key} was removed")
        await self._release(hosted, error)
        try:
            await hosted.replica.close(delete=True)
        except (OSError, StorageError) as exc:
            log.warning("replica %s: deleting its log failed: %s", key, exc)
        log.info("replica %s removed, its log deleted", key)

    def _private_address(self, spu_id: int) -> str | None:
        spec = self._state.spus.get(spu_id)
        return str(spec.private_endpoint) if spec is not None else None


def _log_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s failed", task.get_name(), exc_info=task.exception())
