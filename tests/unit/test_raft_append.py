"""Append-entries on a follower: with ``trim_held`` in front of pysyncobj's handler, a
follower deletes only what Raft deletes (from the first conflicting entry), never an
entry it holds in common with the leader, so never one it has applied."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from election.raft_append import IGNORED, NO_TERM, Entry, trim_held

Log = list[Entry]  # entries from index 1 on; entry i at position i - 1


def log_of(terms: list[int]) -> Log:
    return [(f"c{i}@{t}".encode(), i, t) for i, t in enumerate(terms, start=1)]


def append(leader: Log, prev: int, upto: int, term: int) -> dict[str, Any]:
    """The message a leader of ``term`` sends with entries prev+1..upto of its log."""
    return {
        "type": "append_entries",
        "term": term,
        "commit_index": 0,
        "prevLogIdx": prev,
        "prevLogTerm": leader[prev - 1][2] if prev else 0,
        "entries": leader[prev:upto],
    }


def pysyncobj_follower(log: Log, message: dict[str, Any]) -> Log:
    """What pysyncobj 0.3.17 makes of a follower's log: everything after prevLogIdx
    deleted if it holds any, then the entries appended (the check of prevLogTerm kept)."""
    if message is IGNORED or pysyncobj_asks(log, message) is not None:
        return log
    return log[: message["prevLogIdx"]] + list(message["entries"])


def trimmed(log: Log, message: dict[str, Any], commit: int) -> dict[str, Any]:
    out = trim_held(
        message,
        term_at=lambda i: log[i - 1][2] if 1 <= i <= len(log) else (0 if i == 0 else None),
        last_index=len(log),
        commit_index=commit,
    )
    return message if out is None else out


def test_entries_sent_again_below_what_is_held_delete_nothing() -> None:
    leader = follower = log_of([1, 1, 2, 2, 2, 2, 2, 2])
    message = append(leader, 2, 4, term=2)  # a stale re-send of 3..4
    assert pysyncobj_follower(follower, message) == follower[:4]  # 5..8 gone: the bug
    assert pysyncobj_follower(follower, trimmed(follower, message, commit=6)) == follower


def test_entries_sent_again_with_new_ones_append_only_the_new() -> None:
    leader = log_of([1, 1, 2, 2, 2, 2])
    follower = leader[:4]
    result = trimmed(follower, append(leader, 1, 6, term=2), commit=4)
    assert (result["prevLogIdx"], [e[1] for e in result["entries"]]) == (4, [5, 6])
    assert pysyncobj_follower(follower, result) == leader


def test_a_conflict_deletes_from_the_conflict_only() -> None:
    leader = log_of([1, 1, 3, 3])
    follower = log_of([1, 1, 2, 2, 2])  # 3..5 written by a deposed leader of term 2
    message = append(leader, 1, 4, term=3)
    result = trimmed(follower, message, commit=2)
    assert result["prevLogIdx"] == 2
    assert pysyncobj_follower(follower, result) == leader


def test_a_tail_not_shown_shared_past_re_sent_entries_stays_the_message_is_dropped() -> None:
    leader = log_of([1, 1, 1, 1, 1, 3])
    follower = log_of([1, 1, 1, 1, 1, 2, 2])
    assert trimmed(follower, append(leader, 1, 2, term=3), commit=3) is IGNORED


def test_past_the_end_of_the_leader_s_log_only_what_is_not_committed_goes() -> None:
    leader = log_of([1, 1, 1, 3])
    follower = log_of([1, 1, 1, 2, 2])
    result = trimmed(follower, append(leader, 2, 2, term=3), commit=3)
    assert (result["prevLogIdx"], result["entries"]) == (3, [])
    assert pysyncobj_follower(follower, result) == follower[:3]


def pysyncobj_asks(log: Log, message: dict[str, Any]) -> int | None:
    """The index pysyncobj 0.3.17 asks the leader to send from when it refuses a
    message (None when it takes it)."""
    prev = message["prevLogIdx"]
    if prev > len(log):
        return len(log) + 1
    if prev and log[prev - 1][2] != message["prevLogTerm"]:
        return int(prev)
    return None


def test_a_follower_with_a_deposed_leader_s_tail_asks_from_past_its_commit_index() -> None:
    leader = log_of([1, 1, 1, 3, 3, 3, 3, 3])
    follower = log_of([1, 1, 1, 2, 2])  # 4..5 from a deposed leader of term 2
    # pipelined messages: one past its end (pysyncobj asks for 6), one at its end
    # (term differs: asks for 5); each answer undoes the other's walk back
    past_end, at_end = append(leader, 7, 8, term=3), append(leader, 5, 8, term=3)
    assert (pysyncobj_asks(follower, past_end), pysyncobj_asks(follower, at_end)) == (6, 5)
    for message in (past_end, at_end):
        result = trimmed(follower, message, commit=3)
        assert (result["prevLogIdx"], result["prevLogTerm"]) == (4, NO_TERM)
        assert pysyncobj_asks(follower, result) == 4
        assert pysyncobj_follower(follower, result) == follower  # nothing deleted
    # from there the leader's message replaces the tail, from the conflict
    assert pysyncobj_follower(follower, trimmed(follower, append(leader, 3, 8, 3), 3)) == leader


def test_a_follower_whose_last_entry_is_the_leader_s_asks_as_pysyncobj_does() -> None:
    leader = log_of([1, 1, 3, 3, 3, 3])
    follower = leader[:4]
    message = append(leader, 5, 6, term=3)
    assert trimmed(follower, message, commit=2) is message


def test_messages_left_alone() -> None:
    follower = log_of([1, 1, 1])
    leader = log_of([1, 1, 1, 1])
    at_the_end = append(leader, 3, 4, term=1)
    wrong_prev = {**append(leader, 2, 4, term=1), "prevLogTerm": 9}
    transmission = {**append(leader, 1, 2, term=1), "transmission": "start"}
    snapshot = {"type": "append_entries", "term": 1, "commit_index": 0, "serialized": b""}
    vote = {"type": "request_vote", "term": 1}
    for message in (at_the_end, wrong_prev, transmission, snapshot, vote):
        assert trimmed(follower, message, commit=3) is message


@st.composite
def follower_and_message(draw: st.DrawFn) -> tuple[Log, Log, dict[str, Any], int, int]:
    """A leader's log; a follower sharing a prefix of it (then, maybe, a tail of an
    older term written by a deposed leader); a message the leader may send it (a
    re-send included; no entries only past the end of its log); the follower's commit
    index, within what it shares; how many entries they share."""
    shared = draw(st.integers(0, 12))
    base = draw(st.lists(st.integers(1, 3), min_size=shared, max_size=shared).map(sorted))
    leader_term = 5
    leader_extra = draw(st.integers(0, 6))
    leader = log_of(base + [leader_term] * leader_extra)
    follower_terms = list(base)
    if draw(st.booleans()):
        follower_terms += [4] * draw(st.integers(1, 5))  # a deposed leader's tail
    else:
        follower_terms += [leader_term] * draw(st.integers(0, leader_extra))
    follower = log_of(follower_terms)
    common = 0
    while common < min(len(leader), len(follower)) and leader[common] == follower[common]:
        common += 1
    prev = draw(st.integers(0, len(leader)))  # beyond what they share: a refusal
    upto = draw(st.integers(prev + 1, len(leader))) if prev < len(leader) else prev
    commit = draw(st.integers(0, common))
    return leader, follower, append(leader, prev, upto, leader_term), commit, common


@given(follower_and_message())
def test_a_trimmed_message_never_deletes_a_shared_entry(
    case: tuple[Log, Log, dict[str, Any], int, int],
) -> None:
    leader, follower, message, commit, common = case
    verdict = trimmed(follower, message, commit)
    result = pysyncobj_follower(follower, verdict)
    # every entry it shares with the leader stays (so every committed, applied one)
    assert result[:common] == follower[:common]
    if verdict is not IGNORED and (asks := pysyncobj_asks(follower, verdict)) is not None:
        # a refusal never sends the leader past what they share (no livelock)
        assert asks <= common + 1
    elif verdict is not IGNORED:
        # and the entries carried are there, as the leader has them
        last_carried = message["entries"][-1][1] if message["entries"] else message["prevLogIdx"]
        assert result[:last_carried] == leader[:last_carried]
