"""A leader replica's side of replication: its followers' progress, the ISR, the high
watermark, and the acks=all produces waiting for it (rules: ``isr.py``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from ha_sc.protocol.data import DataError, ErrorCode
from ha_sc.spu.dataplane.appender import ProduceQueue
from ha_sc.spu.dataplane.isr import (
    FollowerProgress,
    after_append,
    after_fetch,
    assumed_in_sync,
    high_watermark,
    next_isr,
)
from ha_sc.spu.dataplane.replica import Replica
from ha_sc.spu.dataplane.waiting import CommitWaiters
from ha_sc.spu.dataplane_settings import DataPlaneSettings

log = logging.getLogger("ha_sc.spu.dataplane")


class PartitionLeadership:
    """What one replica holds while it leads its partition."""

    def __init__(
        self,
        replica: Replica,
        followers: Iterable[int],
        *,
        assumed_in_sync_followers: Iterable[int],
        settings: DataPlaneSettings,
        may_shrink: Callable[[], bool],
        watched: set[PartitionLeadership] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replica = replica
        self._watched = watched if watched is not None else set()
        """Where this leadership puts itself while time alone can change it (an ISR
        member behind the LEO may run out of lag time; acks=all produces wait)."""
        self._settings = settings
        self._may_shrink = may_shrink
        self._clock = clock
        now = clock()
        self.progress: dict[int, FollowerProgress] = {spu: FollowerProgress() for spu in followers}
        assumed = {spu for spu in assumed_in_sync_followers if spu in self.progress}
        for spu in assumed:
            self.progress[spu] = assumed_in_sync(replica.hw, now)
        self.isr: frozenset[int] = frozenset(assumed)
        self.hw_sent: dict[int, int] = {}
        """The HW each follower was last sent."""
        self.commits = CommitWaiters()
        self.produce = ProduceQueue(replica, self.appended)
        self.active = True
        self.update()

    @property
    def lsr(self) -> int:
        """Followers in sync, as the status report counts them."""
        return len(self.isr)

    def set_followers(self, followers: Iterable[int]) -> None:
        """The SC changed the replica list."""
        wanted = set(followers)
        for spu in list(self.progress):
            if spu not in wanted:
                del self.progress[spu]
                self.hw_sent.pop(spu, None)
        for spu in wanted:
            self.progress.setdefault(spu, FollowerProgress())
        self.isr = self.isr & wanted
        self.update()

    def fetched(self, follower: int, offset: int) -> None:
        """A replica fetch from ``follower`` at its LEO ``offset``."""
        progress = self.progress.get(follower)
        if progress is None:
            return
        self.progress[follower] = after_fetch(progress, offset, self.replica.leo, self._clock())
        self.update()

    def appended(self, old_leo: int) -> None:
        """The leader's LEO moved on from ``old_leo``."""
        now = self._clock()
        for spu, progress in self.progress.items():
            self.progress[spu] = after_append(progress, old_leo, now)
        self.update()

    def update(self) -> None:
        """Recompute the ISR and the HW; release the produces the HW now commits."""
        if not self.active:
            return
        replica = self.replica
        isr = next_isr(
            self.isr,
            self.progress,
            leader_leo=replica.leo,
            hw=replica.hw,
            now=self._clock(),
            lag_time=self._settings.lag_time,
            may_shrink=self._may_shrink(),
        )
        if isr != self.isr:
            for spu in sorted(isr - self.isr):
                log.info("replica %s: spu %d joined the in-sync set", replica.key, spu)
            for spu in sorted(self.isr - isr):
                log.warning(
                    "replica %s: spu %d left the in-sync set (not caught up for %g s)",
                    replica.key,
                    spu,
                    self._settings.lag_time,
                )
            self.isr = isr
            replica.changes.fire()  # the in-sync count is reported to the SC
        hw = high_watermark(  # the leader counts what it has fsynced, not what it wrote
            replica.hw, replica.synced_leo, isr, self.progress, min_insync=self._settings.min_insync
        )
        if hw != replica.hw:
            replica.set_hw(hw)
            self.commits.release(hw)
        if self.commits or any(self.progress[spu].leo != replica.leo for spu in isr):
            self._watched.add(self)
        else:
            self._watched.discard(self)

    def wait_commit(self, offset: int, timeout_ms: int) -> asyncio.Future[DataError | None]:
        timeout = DataError(
            code=ErrorCode.TIMEOUT,
            message=(
                f"{self.replica.key}: written on the leader, not committed by the in-sync "
                f"replicas within {timeout_ms} ms"
            ),
        )
        return self.commits.wait(offset, self.replica.hw, timeout_ms / 1000, timeout)

    def step_down(self, error: DataError) -> None:
        """No longer the leader: refuse queued produces, fail the waiting ones."""
        self.active = False
        self._watched.discard(self)
        self.produce.close(error)
        self.commits.fail_all(error)
        self.replica.changes.fire()
