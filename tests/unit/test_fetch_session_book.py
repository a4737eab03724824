"""A follower's fetch session bookkeeping (``session_book.py``) and the session frames'
bodies (``protocol/fetch_session.py``): the full set once, then only changes."""

from __future__ import annotations

import pytest

from ha_sc.protocol.data import DataError, ErrorCode
from ha_sc.protocol.fetch_session import (
    MalformedSessionBody,
    PartitionAnswer,
    SessionChanges,
    decode_answers,
    decode_changes,
    encode_answers,
    encode_changes,
)
from ha_sc.spu.dataplane.session_book import RETRY_INITIAL, SessionBook


def book_of(*keys: str) -> SessionBook:
    book = SessionBook()
    for key in keys:
        book.add(key, 7)
    return book


def test_the_first_fetch_tells_every_partition_and_the_next_only_what_moved() -> None:
    leos = {"t-0": 5, "t-1": 0, "t-2": 9}
    book = book_of(*leos)
    assert book.urgent
    first, changes = book.next_fetch(leos.__getitem__)
    assert sorted(changes.fetch) == [("t-0", 5, 7), ("t-1", 0, 7), ("t-2", 9, 7)]
    assert not book.urgent
    _, idle = book.next_fetch(leos.__getitem__)
    assert idle == SessionChanges(fetch=[], forget=[])
    leos["t-1"] = 3
    book.moved("t-1")
    book.moved("t-2")  # said to have moved, but its offset is what the leader holds
    second, changes = book.next_fetch(leos.__getitem__)
    assert list(changes.fetch) == [("t-1", 3, 7)]
    assert second > first


def test_a_removed_partition_is_forgotten_once_and_answers_about_it_are_dropped() -> None:
    leos = {"t-0": 0, "t-1": 0}
    book = book_of(*leos)
    number, _ = book.next_fetch(leos.__getitem__)
    book.remove("t-1")
    assert book.accepts("t-1", number) is None
    _, changes = book.next_fetch(leos.__getitem__)
    assert list(changes.forget) == ["t-1"]
    _, changes = book.next_fetch(leos.__getitem__)
    assert list(changes.forget) == []


def test_answers_to_a_fetch_sent_before_a_partition_was_added_again_are_not_its() -> None:
    leos = {"t-0": 4}
    book = book_of("t-0")
    old, _ = book.next_fetch(leos.__getitem__)
    book.remove("t-0")
    book.add("t-0", 8)  # told of another leader epoch, cut, followed again
    assert book.accepts("t-0", old) is None
    new, changes = book.next_fetch(leos.__getitem__)
    assert list(changes.fetch) == [("t-0", 4, 8)]
    assert list(changes.forget) == []  # told again in full: the leader replaces it
    assert book.accepts("t-0", old) is None
    assert book.accepts("t-0", new) is not None


def test_a_partition_answered_with_an_error_is_held_then_told_in_full_again() -> None:
    leos = {"t-0": 2, "t-1": 0}
    book = book_of(*leos)
    number, _ = book.next_fetch(leos.__getitem__)
    member = book.accepts("t-0", number)
    assert member is not None
    book.hold(member, now=100.0)
    assert book.accepts("t-0", number) is None
    assert book.next_release() == 100.0 + RETRY_INITIAL
    assert not book.release_due(100.0)
    _, changes = book.next_fetch(leos.__getitem__)
    assert list(changes.fetch) == []
    assert book.release_due(100.0 + RETRY_INITIAL)
    assert book.urgent
    _, changes = book.next_fetch(leos.__getitem__)
    assert list(changes.fetch) == [("t-0", 2, 7)]
    book.hold(member, now=200.0)  # again: it waits twice as long
    assert book.next_release() == 200.0 + 2 * RETRY_INITIAL
    book.hold(member, now=300.0, at_once=True)  # after a cut: with the next fetch
    assert book.urgent


def test_after_a_reset_every_partition_not_held_is_told_in_full() -> None:
    leos = {"t-0": 1, "t-1": 2, "t-2": 3}
    book = book_of(*leos)
    number, _ = book.next_fetch(leos.__getitem__)
    book.session = 42
    held = book.accepts("t-2", number)
    assert held is not None
    book.hold(held, now=0.0)
    book.remove("t-1")
    book.reset()
    assert book.session == 0
    _, changes = book.next_fetch(leos.__getitem__)
    assert sorted(changes.fetch) == [("t-0", 1, 7)]
    assert list(changes.forget) == []  # a new session knows nothing to forget


def test_session_bodies_round_trip() -> None:
    changes = SessionChanges(fetch=[("t-0", 3, None), ("u-12", 0, 99)], forget=["v-1"])
    assert decode_changes(encode_changes(changes)) == SessionChanges(
        fetch=[("t-0", 3, None), ("u-12", 0, 99)], forget=["v-1"]
    )
    assert decode_changes(b"") == SessionChanges()
    refused = DataError(code=ErrorCode.NOT_LEADER, message="spu 1 does not lead t-1", leader=2)
    answers = [
        PartitionAnswer("t-0", 3, 5, 8, 0, data=b"records"),
        PartitionAnswer("t-1", 0, 0, 0, 0, error=refused),
        PartitionAnswer("t-2", 4, 6, 6, 0),
        PartitionAnswer("t-3", 0, 1, 9, 0, data=b"more"),
    ]
    decoded = decode_answers(b"".join(encode_answers(answers)))
    assert [(a.key, a.offset, a.hw, a.leo, a.data) for a in decoded] == [
        ("t-0", 3, 5, 8, b"records"),
        ("t-1", 0, 0, 0, b""),
        ("t-2", 4, 6, 6, b""),
        ("t-3", 0, 1, 9, b"more"),
    ]
    assert decoded[1].error is not None and decoded[1].error.code is ErrorCode.NOT_LEADER


@pytest.mark.parametrize(
    "body",
    [b"\x00\x00", b"\x00\x00\x00\x09[]", b"\x00\x00\x00\x02[]extra", b"\x00\x00\x00\x04[[1]]"],
)
def test_a_malformed_answer_body_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedSessionBody):
        decode_answers(body)


def test_a_malformed_fetch_body_is_refused() -> None:
    with pytest.raises(MalformedSessionBody):
        decode_changes(b'{"fetch": [["t-0", -1, null]]}')
    with pytest.raises(MalformedSessionBody):
        decode_changes(b"not json")
