"""Where a follower cuts its log: at its own HW on a new leader, and where the leader's
batches say."""

from __future__ import annotations

import pytest

from ha_sc.spu.dataplane.truncation import (
    Gap,
    ReplicationStep,
    cut_for_shorter_leader,
    cut_to_follow,
    replication_step,
)
from ha_sc.spu.storage import BatchHeader


def batch(base: int, count: int) -> BatchHeader:
    return BatchHeader(
        crc=0,
        base_offset=base,
        record_count=count,
        payload_length=0,
        first_timestamp_ms=0,
        max_timestamp_ms=0,
        producer_id=0,
        base_sequence=-1,
    )


def test_a_replica_that_starts_following_cuts_above_its_own_hw() -> None:
    assert cut_to_follow(hw=80, leo=100) == 80
    assert cut_to_follow(hw=100, leo=100) is None


def test_a_follower_ahead_of_its_leader_cuts_to_the_lesser_of_hw_and_leader_leo() -> None:
    assert cut_for_shorter_leader(hw=50, leo=100, leader_leo=70) == 50
    assert cut_for_shorter_leader(hw=90, leo=100, leader_leo=70) == 70
    assert cut_for_shorter_leader(hw=90, leo=100, leader_leo=100) is None


def test_batches_the_follower_has_are_skipped_and_a_straddling_one_cuts() -> None:
    assert replication_step(10, [batch(10, 5)]) == ReplicationStep(skip=0, cut=None)
    assert replication_step(10, [batch(5, 5), batch(10, 2)]) == ReplicationStep(1, None)
    assert replication_step(10, [batch(5, 5)]) == ReplicationStep(1, None)
    assert replication_step(10, [batch(8, 5), batch(13, 1)]) == ReplicationStep(0, 8)


def test_batches_starting_past_the_log_end_are_a_gap() -> None:
    with pytest.raises(Gap):
        replication_step(10, [batch(12, 1)])
