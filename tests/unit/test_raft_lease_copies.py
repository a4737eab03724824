"""Lease commands carry no client-session tag: each one is safe to apply twice, because its
effect is conditional on the epoch it names (or on the lease being free). A second copy
is refused and changes nothing; epochs are not bumped twice."""

from __future__ import annotations

from election.guard import Guard
from election.lease_table import Enlisted, LeaseTable


def snapshot(table: LeaseTable) -> tuple[object, ...]:
    return (table.holder("sc"), table.last_epoch("sc"), table.enlisted("sc"))


def test_a_second_acquire_is_refused_and_grants_no_new_epoch() -> None:
    table = LeaseTable()
    first = table.acquire("sc", "a", "addr-a", "run-1")
    after_one = snapshot(table)
    assert table.acquire("sc", "a", "addr-a", "run-1") is None
    assert first is not None and snapshot(table) == after_one


def test_a_second_transfer_names_a_stale_epoch_and_changes_nothing() -> None:
    table = LeaseTable()
    held = table.acquire("sc", "a")
    assert held is not None
    successor = table.transfer("sc", held.epoch, "b", "addr-b")
    after_one = snapshot(table)
    assert table.transfer("sc", held.epoch, "b", "addr-b") is None
    assert successor is not None and snapshot(table) == after_one


def test_a_second_release_or_expiry_changes_nothing() -> None:
    table = LeaseTable()
    held = table.acquire("sc", "a")
    assert held is not None
    assert table.release("sc", held.epoch)
    after_one = snapshot(table)
    assert not table.release("sc", held.epoch)
    assert not table.expire("sc", held.epoch)
    assert snapshot(table) == after_one


def test_a_renewal_copy_only_confirms_the_same_epoch() -> None:
    table = LeaseTable()
    held = table.acquire("sc", "a")
    assert held is not None
    guard = Guard("sc", held.epoch)
    assert table.is_current(guard) and table.is_current(guard)
    successor = table.transfer("sc", held.epoch, "b", "")
    assert successor is not None and not table.is_current(guard)


def test_a_second_enlist_keeps_one_entry_per_candidate() -> None:
    table = LeaseTable()
    for candidate in ("a", "b", "a"):
        table.enlist("sc", Enlisted(candidate, f"addr-{candidate}", f"raft-{candidate}"))
    assert [e.candidate for e in table.enlisted("sc")] == ["b", "a"]
