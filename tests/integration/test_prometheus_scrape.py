"""A real Prometheus scraping every SC replica and SPU of a `cluster up` cluster: exactly
one replica has is-leader = 1 before and after the leader is SIGKILLed, and the epoch
grew."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.integration.test_cluster_cli import cluster_dir, ha_sc, recorded, status
from tests.prometheus_server import Prometheus, running_prometheus
from tests.waiting import eventually_sync

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

__all__ = ["cluster_dir"]  # the fixture, used by name

WAIT = 60.0


def leaders(prometheus: Prometheus) -> dict[str, float]:
    """Every replica Prometheus has a fresh is-leader = 1 from, by instance."""
    return prometheus.values('ha_sc_is_leader{job="sc"} == 1')


@pytest.mark.parametrize(
    "backend",
    [pytest.param("raft", marks=pytest.mark.raft), pytest.param("etcd", marks=pytest.mark.etcd)],
)
def test_prometheus_sees_one_leader_before_and_after_a_leader_sigkill(
    cluster_dir: Path, tmp_path: Path, backend: str
) -> None:
    ha_sc(cluster_dir, "cluster", "up", "--backend", backend, "--replicas", "3", "--spus", "2")
    layout = recorded(cluster_dir)
    replicas = {r["public"]: r for r in layout["replicas"]}
    spus = [s["metrics"] for s in layout["spus"]]
    assert all(spus), layout["spus"]
    jobs = {"sc": list(replicas), "spu": spus}
    with running_prometheus(tmp_path / "prometheus", jobs) as prometheus:
        every = eventually_sync(
            lambda: prometheus.values("up"),
            until=lambda up: len(up) == 5 and all(v == 1 for v in up.values()),
            timeout=WAIT,
            interval=0.5,
            what="prometheus scraped every replica and SPU",
        )
        assert set(every) == {*replicas, *spus}
        [before] = eventually_sync(
            lambda: leaders(prometheus),
            until=lambda found: len(found) == 1,
            timeout=WAIT,
            interval=0.5,
            what="one leader in prometheus",
        )
        assert prometheus.values('ha_sc_is_leader{job="sc"}').keys() == replicas.keys()
        assert len(prometheus.values('ha_sc_spu_info{job="spu"}')) == 2
        epoch_before = max(prometheus.values('ha_sc_epoch{job="sc"}').values())
        assert status(cluster_dir)["leader"]["public"] == before

        os.kill(replicas[before]["pid"], signal.SIGKILL)
        [after] = eventually_sync(
            lambda: leaders(prometheus),
            until=lambda found: len(found) == 1 and before not in found,
            timeout=WAIT,
            interval=0.5,
            what="one new leader in prometheus",
        )
        assert prometheus.values(f'up{{instance="{before}"}}') == {before: 0}
        assert len(leaders(prometheus)) == 1
        epochs = prometheus.values('ha_sc_epoch{job="sc"}')
        assert before not in epochs  # the dead replica's series went stale
        assert epochs[after] > epoch_before
        changes = prometheus.values('ha_sc_leadership_changes_total{change="won"}')
        assert changes[after] >= 1
        # the new leader's syncs of both SPUs (by their cursors, or full), as both SPUs
        # count them applied
        syncs = eventually_sync(
            lambda: prometheus.values(
                'sum by (instance) (ha_sc_pushes_total{kind=~"full_sync|resync"})'
            ),
            until=lambda found: found.get(after, 0) >= 2,
            timeout=WAIT,
            interval=0.5,
            what="the new leader's syncs scraped",
        )
        assert syncs[after] >= 2
        assert all(v >= 2 for v in prometheus.values("ha_sc_spu_pushes_total").values())
