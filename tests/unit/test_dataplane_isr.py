"""The in-sync set and the high watermark: who holds the HW back, and for how long."""

from __future__ import annotations

from ha_sc.spu.dataplane.isr import (
    FollowerProgress,
    after_append,
    after_fetch,
    assumed_in_sync,
    high_watermark,
    is_caught_up,
    next_isr,
)

LAG = 10.0


def isr_after(
    isr: set[int],
    followers: dict[int, FollowerProgress],
    *,
    leader_leo: int,
    hw: int,
    now: float,
    may_shrink: bool = True,
) -> set[int]:
    return set(
        next_isr(
            frozenset(isr),
            followers,
            leader_leo=leader_leo,
            hw=hw,
            now=now,
            lag_time=LAG,
            may_shrink=may_shrink,
        )
    )


def test_a_fetch_from_the_leaders_leo_is_caught_up_now() -> None:
    progress = after_fetch(FollowerProgress(), offset=100, leader_leo=100, now=5.0)
    assert progress.leo == 100 and progress.caught_up_at == 5.0


def test_keeping_up_with_a_busy_leader_counts_as_caught_up_at_the_previous_fetch() -> None:
    first = after_fetch(FollowerProgress(), offset=90, leader_leo=100, now=1.0)
    assert first.caught_up_at is None
    second = after_fetch(first, offset=100, leader_leo=120, now=2.0)  # reached the old LEO
    assert second.caught_up_at == 1.0
    third = after_fetch(second, offset=110, leader_leo=140, now=3.0)  # fell behind it
    assert third.caught_up_at == 1.0


def test_an_append_keeps_a_parked_follower_caught_up_until_that_moment() -> None:
    parked = after_fetch(FollowerProgress(), offset=100, leader_leo=100, now=1.0)
    moved = after_append(parked, old_leo=100, now=50.0)
    assert moved.caught_up_at == 50.0
    behind = after_fetch(FollowerProgress(), offset=80, leader_leo=100, now=1.0)
    assert after_append(behind, old_leo=100, now=50.0) == behind


def test_an_idle_follower_at_the_leo_stays_caught_up_however_long_it_is_quiet() -> None:
    parked = after_fetch(FollowerProgress(), offset=100, leader_leo=100, now=1.0)
    assert is_caught_up(parked, leader_leo=100, now=1000.0, lag_time=LAG)
    assert not is_caught_up(parked, leader_leo=101, now=1000.0, lag_time=LAG)
    assert is_caught_up(parked, leader_leo=101, now=10.5, lag_time=LAG)


def test_a_follower_joins_once_caught_up_and_holding_the_hw() -> None:
    followers = {2: after_fetch(FollowerProgress(), offset=100, leader_leo=100, now=1.0)}
    assert isr_after(set(), followers, leader_leo=100, hw=100, now=1.0) == {2}
    assert isr_after(set(), followers, leader_leo=100, hw=101, now=1.0) == set()
    never = {3: FollowerProgress()}
    assert isr_after(set(), never, leader_leo=0, hw=0, now=1.0) == set()


def test_a_lagging_follower_leaves_after_the_lag_time_only_while_the_leader_may_shrink() -> None:
    followers = {2: after_fetch(FollowerProgress(), offset=50, leader_leo=50, now=0.0)}
    followers[2] = after_append(followers[2], old_leo=50, now=1.0)
    assert isr_after({2}, followers, leader_leo=80, hw=50, now=10.9) == {2}
    assert isr_after({2}, followers, leader_leo=80, hw=50, now=11.1) == set()
    assert isr_after({2}, followers, leader_leo=80, hw=50, now=99.0, may_shrink=False) == {2}


def test_a_follower_taken_as_in_sync_gets_the_lag_time_to_show_up() -> None:
    followers = {2: assumed_in_sync(40, now=0.0)}
    assert isr_after({2}, followers, leader_leo=50, hw=40, now=9.0) == {2}
    assert isr_after({2}, followers, leader_leo=50, hw=40, now=10.5) == set()


def test_hw_is_the_least_leo_over_leader_and_isr_and_never_goes_down() -> None:
    followers = {
        2: FollowerProgress(leo=70),
        3: FollowerProgress(leo=60),
        4: FollowerProgress(leo=10),  # out of the ISR: does not count
    }
    assert high_watermark(0, 100, frozenset({2, 3}), followers, min_insync=1) == 60
    assert high_watermark(65, 100, frozenset({2, 3}), followers, min_insync=1) == 65
    assert high_watermark(0, 100, frozenset(), followers, min_insync=1) == 100


def test_hw_stays_while_fewer_than_min_insync_replicas_are_in_sync() -> None:
    followers = {2: FollowerProgress(leo=70)}
    assert high_watermark(10, 100, frozenset(), followers, min_insync=2) == 10
    assert high_watermark(10, 100, frozenset({2}), followers, min_insync=2) == 70
