"""When a node received the log entries it has not applied yet (election/entry_arrivals.py)."""

from __future__ import annotations

from election.entry_arrivals import EntryArrivals


def test_each_entry_has_the_time_of_the_message_that_brought_it() -> None:
    arrivals = EntryArrivals()
    arrivals.received(1, 3, 10.0)
    arrivals.received(4, 4, 11.0)
    assert [arrivals.arrived(i) for i in (1, 2, 3, 4)] == [10.0, 10.0, 10.0, 11.0]
    assert arrivals.arrived(5) is None


def test_entries_replaced_from_a_conflict_on_take_the_later_time() -> None:
    arrivals = EntryArrivals()
    arrivals.received(1, 5, 10.0)
    arrivals.received(4, 6, 12.0)  # the leader overwrote 4 and 5
    assert [arrivals.arrived(i) for i in (3, 4, 5, 6)] == [10.0, 12.0, 12.0, 12.0]


def test_applied_entries_are_forgotten() -> None:
    arrivals = EntryArrivals()
    for index in range(1, 101):
        arrivals.received(index, index, float(index))
    assert arrivals.arrived(60) == 60.0
    assert len(arrivals) == 41
    arrivals.forget_through(100)
    assert len(arrivals) == 0
    assert arrivals.arrived(1) is None  # applied before: not noted any more


def test_an_entry_not_noted_has_no_arrival() -> None:
    arrivals = EntryArrivals()
    arrivals.received(10, 12, 5.0)
    assert arrivals.arrived(9) is None  # loaded from the journal, say
    assert arrivals.arrived(10) == 5.0
