"""How long the Raft leader counts a holder silent, and when an expiry is refused.

The lease table's expiry names the renewal it counted from; the silence on a node
counts from when the last grant or renewal *arrived* on it (its Raft node's note),
not from when it was applied: a new Raft leader applies the previous term's entries
only after its election. Commands are applied here directly (pysyncobj's
``_doApply``), on a stand-in for the Raft node that says when the entry arrived.
"""

from __future__ import annotations

import time
from typing import Any

from election.lease_table import LeaseTable
from election.raft_lease import RaftLeases


class ArrivalsNode:
    """Stands in for ``RaftSyncObj``: the entry being applied arrived at ``arrival``."""

    def __init__(self, arrival: float | None) -> None:
        self.arrival = arrival

    def applying_arrival(self) -> float | None:
        return self.arrival


def leases_on(node: Any) -> RaftLeases:
    leases = RaftLeases()
    leases._syncObj = node
    return leases


def test_silence_counts_from_when_the_renewal_arrived_not_from_its_apply() -> None:
    arrived = time.monotonic() - 0.3  # received before an election, applied after it
    node = ArrivalsNode(None)
    leases = leases_on(node)
    held = leases.acquire("sc", "a", "addr-a", "run-1", _doApply=True)
    assert held is not None
    node.arrival = arrived
    assert leases.renew("sc", held.epoch, _doApply=True)
    silence = leases.silence("sc")
    assert silence is not None
    assert (silence.epoch, silence.renewals, silence.since) == (held.epoch, 1, arrived)


def test_without_a_noted_arrival_silence_counts_from_the_apply() -> None:
    leases = leases_on(ArrivalsNode(None))
    before = time.monotonic()
    held = leases.acquire("sc", "a", "addr-a", "run-1", _doApply=True)
    assert held is not None
    silence = leases.silence("sc")
    assert silence is not None and silence.since >= before


def test_an_arrival_noted_later_than_now_counts_from_now() -> None:
    leases = leases_on(ArrivalsNode(time.monotonic() + 60))
    held = leases.acquire("sc", "a", "addr-a", "run-1", _doApply=True)
    silence = leases.silence("sc")
    assert held is not None and silence is not None
    assert silence.since <= time.monotonic()


def test_an_expiry_counted_from_an_earlier_renewal_is_refused() -> None:
    """A renewal ordered in the log before the expiry ends nothing: the holder extended
    its term when it committed."""
    leases = leases_on(ArrivalsNode(None))
    held = leases.acquire("sc", "a", "addr-a", "run-1", _doApply=True)
    assert held is not None
    silence = leases.silence("sc")
    assert silence is not None
    assert leases.renew("sc", held.epoch, _doApply=True)
    assert not leases.expire("sc", held.epoch, silence.renewals, _doApply=True)
    assert (
        leases.take_over("sc", held.epoch, silence.renewals, "b", "addr-b", "run-2", _doApply=True)
        is None
    )
    assert leases.holder("sc") == held


def test_a_take_over_expires_and_grants_in_one_step_under_a_new_epoch() -> None:
    leases = leases_on(ArrivalsNode(None))
    held = leases.acquire("sc", "a", "addr-a", "run-1", _doApply=True)
    assert held is not None
    assert leases.renew("sc", held.epoch, _doApply=True)
    silence = leases.silence("sc")
    assert silence is not None
    taken = leases.take_over(
        "sc", held.epoch, silence.renewals, "b", "addr-b", "run-2", _doApply=True
    )
    assert taken is not None and (taken.candidate, taken.epoch) == ("b", held.epoch + 1)
    assert not leases.renew("sc", held.epoch, _doApply=True)  # the old holder's next renewal
    after = leases.silence("sc")
    assert after is not None and (after.epoch, after.renewals) == (taken.epoch, 0)


def test_renewals_are_counted_per_epoch_and_survive_a_snapshot() -> None:
    table = LeaseTable()
    held = table.acquire("sc", "a")
    assert held is not None
    assert table.renew("sc", held.epoch) and table.renew("sc", held.epoch)
    assert not table.renew("sc", held.epoch + 1)
    assert table.renewals("sc") == 2
    leases = leases_on(ArrivalsNode(None))
    leases._deserialize({"table": table})
    silence = leases.silence("sc")
    assert silence is not None and (silence.epoch, silence.renewals) == (held.epoch, 2)


def test_a_table_from_before_renewals_were_counted_counts_from_zero() -> None:
    table = LeaseTable()
    held = table.acquire("sc", "a")
    assert held is not None
    del table.__dict__["_renewals"]  # as unpickled from an older snapshot
    assert table.renewals("sc") == 0
    assert table.renew("sc", held.epoch) and table.renewals("sc") == 1
    assert table.expire("sc", held.epoch, 1)
