"""`cluster up` lease timings: checked before anything starts, fixed for the cluster's life,
passed to every replica."""

from __future__ import annotations

from pathlib import Path

import pytest

from election.raft import DEFAULT_TIMING
from ha_sc.cluster.launcher import plan, replica_args
from ha_sc.cluster.layout import ClusterLayout, LeaseTimings
from ha_sc.sc.settings import Backend, ScSettings


def plan_with(
    timings: LeaseTimings | None,
    existing: ClusterLayout | None = None,
    *,
    replicas: int = 1,
    backend: str = "raft",
) -> ClusterLayout:
    return plan(
        existing, replicas=replicas, spus=0, backend=backend, etcd_endpoints=[], timings=timings
    )


def test_timings_are_recorded_and_given_to_every_replica(tmp_path: Path) -> None:
    timings = LeaseTimings(lease_ttl=2.0, renew_deadline=1.5)
    layout = plan_with(timings, replicas=3)
    assert layout.timings == timings
    for replica in layout.replicas:
        args = replica_args(layout, replica, tmp_path)
        at = args.index("--lease-ttl")
        assert args[at : at + 4] == ["--lease-ttl", "2", "--renew-deadline", "1.5"]
        assert "--renew-interval" not in args


def test_a_later_up_keeps_the_recorded_timings_and_refuses_others() -> None:
    made = plan_with(LeaseTimings(lease_ttl=2.0, renew_deadline=1.5))
    again = plan_with(None, made, replicas=2)
    assert again.timings == made.timings
    with pytest.raises(ValueError, match="same lease timings"):
        plan_with(LeaseTimings(lease_ttl=3.0), made, replicas=2)


def test_timings_that_cannot_work_are_refused_naming_why() -> None:
    with pytest.raises(ValueError, match=r"lease_ttl \(0.5s\) must be greater than renew_deadline"):
        plan_with(LeaseTimings(lease_ttl=0.5))
    with pytest.raises(ValueError, match="renew_interval: Input should be greater than 0"):
        plan_with(LeaseTimings(renew_interval=0), backend="etcd")


def test_a_replica_uses_its_backends_defaults_unless_told() -> None:
    assert ScSettings().election_timing() == DEFAULT_TIMING
    told = ScSettings(backend=Backend.RAFT, lease_ttl=1.2, renew_deadline=0.9)
    timing = told.election_timing()
    assert (timing.lease_ttl, timing.renew_deadline, timing.renew_interval) == (1.2, 0.9, 0.1)
