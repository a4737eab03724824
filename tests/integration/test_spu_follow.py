"""SPUs follow a new SC leader at its win, not after their SC timeout; a topic created
right after the failover is provisioned, not refused for want of SPUs.

Three Raft SC replicas and three SPUs as OS processes; the leader is SIGSTOPped (and
resumed in ``finally``). The standbys' leader notices move every SPU to the new
leader; each SPU applies spec messages in epoch order only."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from ha_sc.model import TopicResolution
from tests.sc_processes import LocalCluster, applied_epochs, computed, eventually

pytestmark = [pytest.mark.slow, pytest.mark.raft]

FOLLOW_BOUND = 5.0
"""New leader agreed -> every SPU follows it: generous for a noisy 2-core machine (the
200 ms target is measured in bench/, not asserted); without leader notices an SPU
needs its 2 s SC timeout plus a connection and a hold, so a slow one misses it."""


async def test_spus_follow_a_new_leader_at_once_and_a_create_right_after_is_provisioned(
    tmp_path: Path,
) -> None:
    with LocalCluster(tmp_path, backend="raft", replicas=3, spus=3) as cluster:
        leader, epoch = await cluster.start_all()
        await eventually(lambda: cluster.spus_follow(leader, epoch), what="SPUs follow")
        standbys = [name for name in cluster.replicas if name != leader]
        frozen = cluster.replicas[leader]
        frozen.signal(signal.SIGSTOP)
        try:
            new_leader, new_epoch = await cluster.wait_for_leader(standbys, above=epoch)
            agreed = time.monotonic()
            await eventually(
                lambda: cluster.spus_follow(new_leader, new_epoch),
                timeout=FOLLOW_BOUND,
                what=f"every SPU follows {new_leader} at epoch {new_epoch}",
            )
            followed_after = time.monotonic() - agreed
            async with cluster.admin(*standbys, timeout=20.0) as client:
                topic = await client.create_topic("during-pause", computed(2, 2))
            assert topic.status.resolution is TopicResolution.PROVISIONED
        finally:
            frozen.signal(signal.SIGCONT)
        for spu_id, spu in cluster.spus.items():
            epochs = applied_epochs(spu.log())
            assert epochs == sorted(epochs), f"spu {spu_id} applied {epochs}"
            assert "moving there now" in spu.log(), f"spu {spu_id} moved on no notice"
        print(f"every SPU followed {followed_after:.3f} s after the new leader was agreed")
        cluster.assert_no_crash()
