"""A follower replica taking what its leader sent: the batches appended after the
ones it has (``truncation.py`` lines them up), the HW the lesser of the leader's and
its own LEO. The fetching is ``follower_session.py``'s, for every partition followed
from one leader at once."""

from __future__ import annotations

import logging

from ha_sc.spu.dataplane.replica import Replica
from ha_sc.spu.dataplane.truncation import replication_step
from ha_sc.spu.storage import ReplicaLog, iter_batches

log = logging.getLogger("ha_sc.spu.dataplane")


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
