"""Election decisions with no I/O: timings, the lease table, the epoch fence, terms."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from pydantic import ValidationError

from election.epoch_fence import EpochFence
from election.guard import Guard
from election.leadership import Leadership
from election.lease_table import Enlisted, LeaseTable
from election.timing import ElectionTiming


def test_timing_defaults_are_ordered() -> None:
    timing = ElectionTiming()
    assert timing.lease_ttl > timing.renew_deadline > timing.renew_interval


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"lease_ttl": 1.0, "renew_deadline": 1.0},
            "lease_ttl (1.0s) must be greater than renew_deadline",
        ),
        (
            {"lease_ttl": 1.0, "renew_deadline": 1.5},
            "lease_ttl (1.0s) must be greater than renew_deadline",
        ),
        (
            {"renew_deadline": 0.3, "renew_interval": 0.3},
            "renew_deadline (0.3s) must be greater than renew_interval",
        ),
        ({"lease_ttl": 0}, "lease_ttl"),
        ({"retry_period": -1}, "retry_period"),
    ],
)
def test_bad_timings_are_refused_with_a_reason(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        ElectionTiming(**fields)


def test_lease_table_grants_once_and_epochs_only_grow() -> None:
    table = LeaseTable()
    first = table.acquire("sc", "a", "addr-a", "run1")
    assert first is not None and first.epoch == 1
    assert table.acquire("sc", "b") is None  # held
    assert table.is_current(Guard("sc", 1))
    assert table.release("sc", 1)
    assert not table.is_current(Guard("sc", 1))
    second = table.acquire("sc", "b")
    assert second is not None and second.epoch == 2
    assert not table.expire("sc", 1)  # an old epoch cannot end the new tenure
    assert table.expire("sc", 2)
    third = table.acquire("sc", "a")
    assert third is not None and third.epoch == 3
    assert table.last_epoch("sc") == 3


def test_transfer_needs_the_current_epoch_and_bumps_it() -> None:
    table = LeaseTable()
    table.acquire("sc", "a")
    assert table.transfer("sc", 7, "b", "addr-b") is None
    moved = table.transfer("sc", 1, "b", "addr-b", "run9")
    assert moved is not None
    assert (moved.candidate, moved.epoch, moved.incarnation) == ("b", 2, "run9")
    assert not table.is_current(Guard("sc", 1)) and table.is_current(Guard("sc", 2))


def test_elections_are_independent_and_candidates_enlist() -> None:
    table = LeaseTable()
    table.acquire("sc", "a")
    other = table.acquire("other", "a")
    assert other is not None and other.epoch == 1
    table.enlist("sc", Enlisted("a", "addr-a", "raft-a"))
    table.enlist("sc", Enlisted("b", "addr-b", "raft-b"))
    table.enlist("sc", Enlisted("a", "addr-a2", "raft-a", "run2"))  # a restart: last in line
    assert [(e.candidate, e.address) for e in table.enlisted("sc")] == [
        ("b", "addr-b"),
        ("a", "addr-a2"),
    ]


def test_epoch_fence_admits_only_current_or_newer_and_counts_refusals() -> None:
    fence = EpochFence(name="spu 5001")
    assert fence.admit(3)
    assert fence.admit(3)
    assert fence.admit(5)
    assert not fence.admit(4)
    assert not fence.admit(3)
    assert fence.admit(5)
    assert (fence.highest, fence.refused) == (5, 2)
    restored = EpochFence(highest=9)
    assert not restored.admit(8) and restored.refused == 1


async def test_leadership_ends_a_term_at_its_renew_deadline() -> None:
    timing = ElectionTiming(lease_ttl=0.3, renew_deadline=0.2, renew_interval=0.05)
    leadership = Leadership("sc", "a", timing)
    watchdog = asyncio.create_task(leadership.watchdog(), name="watchdog")
    try:
        sent = time.monotonic()
        term = leadership.win(4, sent)
        assert leadership.term is term and term.guard == Guard("sc", 4)
        await asyncio.sleep(0.1)
        leadership.renewed(time.monotonic())  # extends to renewal + deadline
        assert term.is_valid()
        await asyncio.wait_for(term.lost.wait(), 1.0)
        assert term.lost_reason.startswith("no renewal succeeded")
        assert leadership.term is None
        # it ended no earlier than the deadline of its last renewal
        assert time.monotonic() - sent >= 0.3 - 0.01
    finally:
        watchdog.cancel()
        await asyncio.gather(watchdog, return_exceptions=True)


async def test_a_paused_holder_sees_its_term_invalid_before_any_task_runs() -> None:
    leadership = Leadership("sc", "a", ElectionTiming())
    term = leadership.win(1, time.monotonic() - 10)  # as if paused past its deadline
    assert not term.is_valid()
    assert leadership.term is None
