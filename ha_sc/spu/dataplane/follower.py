"""A follower replica pulling from its leader: fetch from the LEO, append, take the HW.

One loop per follower replica, for as long as it follows that leader (a replica told
of another leader gets a new loop; the old one is cancelled first, so it never
fetches from the old leader again). The follower's HW is the lesser of the leader's
and its own LEO. Errors are retried after a wait (0.05 s doubling to 1 s): a leader
that does not know yet that it leads, or that is down, is asked again.

The leader answers a fetch as soon as it has records or a newer HW for it, else at the
end of the fetch's wait. A fetch that comes back with nothing new makes the next one
wait twice as long (from ``replica_wait_ms`` up to ``replica_idle_wait_ms``), so an
idle partition costs a request every few minutes, not every few seconds; it answers
just as soon when records come, and anything new brings the wait back down. (A
follower parked at the leader's LEO stays in sync however long it waits: ``isr.py``.)
"""

from __future__ import annotations

import asyncio
import logging

from ha_sc.protocol.data import ErrorCode, ReplicaFetchRequest
from ha_sc.spu.dataplane.link import LeaderLink, LinkDown
from ha_sc.spu.dataplane.replica import Replica
from ha_sc.spu.dataplane.truncation import Gap, cut_for_shorter_leader, replication_step
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from ha_sc.spu.storage import MalformedBatch, ReplicaLog, StorageError, iter_batches

log = logging.getLogger("ha_sc.spu.dataplane")

BACKOFF_INITIAL = 0.05
BACKOFF_MAX = 1.0
ANSWER_SLACK = 5.0
"""Seconds past ``wait_ms`` before a fetch with no answer counts as lost."""


def append_fetched(replica: Replica, current: ReplicaLog, body: bytes, leader_hw: int) -> int:
    """Append what the leader sent (on an I/O thread); returns the follower's new HW."""
    batches = list(iter_batches(body))
    step = replication_step(current.leo, [batch.header for batch in batches])
    if step.cut is not None:
        log.warning(
            "replica %s: the leader's batch at %d overlaps this log's end %d; cutting there",
            replica.key,
            step.cut,
            current.leo,
        )
        replica.truncate_log(current, step.cut)
    kept = batches[step.skip :]
    if kept:
        current.append_replicated_many(kept)
        for batch in kept:
            replica.producers.record(batch.header)
    return min(leader_hw, current.leo)


class Follower:
    """Replicates ``replica`` from leader SPU ``leader`` over ``link`` until cancelled."""

    def __init__(
        self,
        spu_id: int,
        replica: Replica,
        leader: int,
        link: LeaderLink,
        settings: DataPlaneSettings,
    ) -> None:
        self._spu_id = spu_id
        self._replica = replica
        self._leader = leader
        self._link = link
        self._settings = settings
        topic, _, index = replica.key.rpartition("-")
        self._topic, self._partition = topic, int(index)
        self.fetches = 0
        self.wait_ms = settings.replica_wait_ms
        """What the next fetch waits at the leader (longer while the partition is idle)."""

    async def run(self) -> None:
        delay = BACKOFF_INITIAL
        trouble: str | None = None
        while True:
            problem = await self._step()
            if problem is None:
                if trouble is not None:
                    log.info(
                        "replica %s: replicating from spu %d again", self._replica.key, self._leader
                    )
                trouble, delay = None, BACKOFF_INITIAL
                continue
            if problem != trouble:
                log.info("replica %s: %s; retrying", self._replica.key, problem)
                trouble = problem
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _step(self) -> str | None:
        """One fetch and what follows it; a problem to wait on, or None."""
        replica, settings = self._replica, self._settings
        request = ReplicaFetchRequest(
            id=0,
            topic=self._topic,
            partition=self._partition,
            follower=self._spu_id,
            offset=replica.leo,
            max_bytes=settings.replica_fetch_bytes,
            wait_ms=self.wait_ms,
        )
        try:
            response, body = await self._link.fetch(
                request, timeout=self.wait_ms / 1000 + ANSWER_SLACK
            )
        except LinkDown as exc:
            return str(exc)
        except TimeoutError:
            return f"no answer from spu {self._leader}"
        self.fetches += 1
        error = response.error
        if error is not None:
            if error.code is ErrorCode.OFFSET_OUT_OF_RANGE:
                return await self._out_of_range(response.leo, response.log_start)
            return f"spu {self._leader} answers {error.code}: {error.message}"
        try:
            if body:
                hw = await replica.mutate(
                    lambda current: append_fetched(replica, current, body, response.hw)
                )
            else:
                hw = min(response.hw, replica.leo)
        except (MalformedBatch, Gap) as exc:
            return f"bad batches from spu {self._leader}: {exc}"
        except (OSError, StorageError) as exc:
            log.warning("replica %s: cannot append what the leader sent: %s", replica.key, exc)
            return f"storage error: {exc}"
        if body or hw != replica.hw:
            self.wait_ms = settings.replica_wait_ms
        else:  # the whole wait passed with nothing new: the partition is idle
            self.wait_ms = min(2 * self.wait_ms, max(settings.replica_idle_wait_ms, self.wait_ms))
        replica.set_hw(hw)
        return None

    async def _out_of_range(self, leader_leo: int, leader_start: int) -> str | None:
        replica = self._replica
        cut = cut_for_shorter_leader(replica.hw, replica.leo, leader_leo)
        if cut is not None:
            log.warning(
                "replica %s: the log ends at %d, the leader's at %d; cutting to %d",
                replica.key,
                replica.leo,
                leader_leo,
                cut,
            )
            try:
                await replica.cut(cut)
            except (OSError, StorageError) as exc:
                return f"cannot cut the log: {exc}"
            return None
        if replica.leo < leader_start:
            return (
                f"the log ends at {replica.leo}, before the leader's log start "
                f"{leader_start} (retention): cannot catch up"
            )
        return f"offset {replica.leo} out of the leader's range"
