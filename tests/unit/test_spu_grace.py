"""A new leader's grace for SPUs: derived from the SPU and SC timings, checked together,
and a create within it waits for the SPUs instead of being refused."""

from __future__ import annotations

import pytest

from ha_sc.controllers import SimulatedCluster, simulate_actions
from ha_sc.controllers.cluster_plan import plan_cluster
from ha_sc.model import (
    Kind,
    ObjectMeta,
    SpuResolution,
    Topic,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    TopicStatus,
)
from ha_sc.sc.spu_grace import (
    DEFAULT_SPU_GRACE,
    FollowTiming,
    FollowTimingError,
    check_follow_timing,
    grace_over,
    spu_grace,
)
from ha_sc.spu.settings import SpuSettings
from tests.stored_spus import stored_spu


def test_the_grace_outlasts_what_an_spu_needs_to_come_over() -> None:
    timing = FollowTiming(
        sc_timeout=2.0, connect_timeout=1.0, hold=1.0, backoff_max=0.2, margin=0.5
    )
    assert spu_grace(timing) == pytest.approx(4.7)


def test_the_grace_follows_each_timing() -> None:
    base = spu_grace(FollowTiming(margin=0))
    assert spu_grace(FollowTiming(margin=0, sc_timeout=3.0)) == pytest.approx(base + 1.0)
    assert spu_grace(FollowTiming(margin=0, connect_timeout=0.5)) == pytest.approx(base - 0.5)
    assert spu_grace(FollowTiming(margin=0, hold=0.0)) == pytest.approx(base - 1.0)
    assert spu_grace(FollowTiming(margin=0, backoff_max=0.4)) == pytest.approx(base + 0.2)


def test_the_default_grace_is_built_from_the_spus_defaults() -> None:
    defaults = SpuSettings.model_fields
    silence = defaults["sc_timeout"].default
    assert isinstance(silence, float)
    assert silence + defaults["connect_timeout"].default < DEFAULT_SPU_GRACE
    assert spu_grace(FollowTiming()) == DEFAULT_SPU_GRACE


def test_a_hold_the_spu_cannot_wait_out_is_named() -> None:
    with pytest.raises(FollowTimingError, match=r"hold < sc_timeout"):
        check_follow_timing(FollowTiming(sc_timeout=1.0, hold=1.0))
    with pytest.raises(FollowTimingError, match=r"hold < sc_timeout"):
        spu_grace(FollowTiming(sc_timeout=1.0, hold=1.5))


def test_a_keepalive_slower_than_the_spus_patience_is_named() -> None:
    with pytest.raises(FollowTimingError, match=r"keepalive_interval < sc_timeout"):
        check_follow_timing(FollowTiming(sc_timeout=2.0, keepalive_interval=2.0))


def test_default_timings_pass_the_check() -> None:
    check_follow_timing(FollowTiming())


def test_an_spu_server_refuses_a_hold_spus_cannot_wait_out() -> None:
    from ha_sc.sc.spu_server import SpuServer

    with pytest.raises(FollowTimingError, match=r"hold < sc_timeout"):
        SpuServer(None, "127.0.0.1:0", hold=5.0)  # type: ignore[arg-type]


# the topic reducer within the grace


spu = stored_spu


def after_failover() -> SimulatedCluster:
    """One SPU stored Online, one stored Offline, and a topic needing both."""
    topic = Topic(
        meta=ObjectMeta(key="during-pause", revision=1),
        spec=TopicSpec(replicas=TopicReplicas.new_computed(2, 2)),
        status=TopicStatus(),
    )
    return SimulatedCluster.of(
        [
            (Kind.SPU, spu(5001, SpuResolution.ONLINE)),
            (Kind.SPU, spu(5002, SpuResolution.OFFLINE)),
            (Kind.TOPIC, topic),
        ]
    )


def run_passes(
    state: SimulatedCluster, *, connected: set[int] | None, settling: bool, passes: int = 4
) -> SimulatedCluster:
    for _ in range(passes):
        actions = plan_cluster(
            spus=state.spus,
            topics=state.topics,
            partitions=state.partitions,
            connected=connected,
            settling=settling,
        )
        if not actions:
            break
        state = simulate_actions(state, actions)
    return state


def test_a_create_within_the_grace_waits_pending_instead_of_being_refused() -> None:
    state = run_passes(after_failover(), connected=None, settling=True)
    assert state.topics["during-pause"].status.resolution is TopicResolution.PENDING
    assert state.partitions == {}

    # the grace ends with both SPUs connected to the new leader: provisioned
    state = run_passes(state, connected={5001, 5002}, settling=False)
    assert state.topics["during-pause"].status.resolution is TopicResolution.PROVISIONED
    assert sorted(state.partitions) == ["during-pause-0", "during-pause-1"]


def test_after_the_grace_too_few_spus_is_insufficient_resources() -> None:
    state = run_passes(after_failover(), connected={5001}, settling=False)
    assert state.topics["during-pause"].status.resolution is (
        TopicResolution.INSUFFICIENT_RESOURCES
    )


def test_the_grace_ends_when_it_runs_out() -> None:
    assert not grace_over(elapsed=4.6, grace=4.7, were_online=[5001], connected=[])
    assert grace_over(elapsed=4.7, grace=4.7, were_online=[5001], connected=[])


def test_the_grace_ends_early_once_every_spu_online_before_has_come_over() -> None:
    assert not grace_over(elapsed=0.1, grace=4.7, were_online=[5001, 5002], connected=[5001])
    assert grace_over(elapsed=0.1, grace=4.7, were_online=[5001, 5002], connected=[5002, 5001])
    assert grace_over(elapsed=0.1, grace=4.7, were_online=[5001], connected=[5001, 5003])
