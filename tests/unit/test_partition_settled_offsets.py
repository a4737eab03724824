"""The quick check that a partition's status already holds its reported offsets agrees
with the full rebuild, over many statuses, specs and reports."""

import random

from ha_sc.controllers.partitions.status_offsets import (
    ReportedOffsets,
    _settled,
    _with_offsets,
    with_reported_offsets,
)
from ha_sc.model.partition import PartitionResolution, PartitionSpec, PartitionStatus, ReplicaStatus

SPUS = [5001, 5002, 5003, 5004]


def offsets(rng: random.Random) -> tuple[int, int]:
    return rng.choice([(0, 0), (0, 3), (3, 3), (-1, -1)])


def case(rng: random.Random) -> tuple[PartitionStatus, PartitionSpec, dict[int, ReportedOffsets]]:
    replicas = rng.sample(SPUS, rng.randint(1, 3))
    spec = PartitionSpec(leader=rng.choice(replicas), replicas=replicas)
    stored = rng.sample(SPUS, rng.randint(0, 3))
    if rng.random() < 0.5:  # the usual form: the spec's followers, in its order
        stored = [spu for spu in replicas if spu != spec.leader]
    followers = [
        ReplicaStatus(spu=spu, hw=hw, leo=leo) for spu in stored for hw, leo in [offsets(rng)]
    ]
    hw, leo = offsets(rng)
    status = PartitionStatus(
        resolution=PartitionResolution.ONLINE,
        leader=ReplicaStatus(
            spu=spec.leader if rng.random() < 0.8 else rng.choice(SPUS), hw=hw, leo=leo
        ),
        replicas=followers,
        lsr=rng.randint(0, 2),
    )
    reported = {}
    for spu in rng.sample(SPUS, rng.randint(0, 4)):
        hw, leo = offsets(rng)
        reported[spu] = ReportedOffsets(leo=leo, hw=hw, lsr=rng.choice([None, 0, 1, 2]))
    if rng.random() < 0.5:  # reports that match what is stored
        for replica in [status.leader, *followers]:
            reported[replica.spu] = ReportedOffsets(leo=replica.leo, hw=replica.hw, lsr=status.lsr)
    return status, spec, reported


def test_settled_only_where_the_full_rebuild_changes_nothing() -> None:
    rng = random.Random(17)
    settled = 0
    for _ in range(5000):
        status, spec, reported = case(rng)
        full = _with_offsets(status, spec, reported)
        if _settled(status, spec, reported):
            settled += 1
            assert full is status
        if reported:  # none reported: the status as stored, not rebuilt
            assert with_reported_offsets(status, spec, reported) == full
    assert settled > 500  # the quick path was taken often enough to have been checked
