"""A fetch session's bodies from a peer, however wrong, end in MalformedSessionBody and
nothing else: random bytes, random JSON, and near-valid bodies whose numbers and keys
are out of range, for the leader's side (``decode_changes``) and the follower's
(``decode_answers``)."""

from __future__ import annotations

import json
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from ha_sc.protocol.fetch_session import (
    MalformedSessionBody,
    PartitionAnswer,
    SessionChanges,
    decode_answers,
    decode_changes,
    encode_answers,
    encode_changes,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(body=st.binary(max_size=256) | json_values.map(lambda v: json.dumps(v).encode()))
def test_a_bad_changes_body_is_a_malformed_session_body(body: bytes) -> None:
    try:
        changes = decode_changes(body)
    except MalformedSessionBody:
        return
    assert isinstance(changes, SessionChanges)


@settings(max_examples=300)
@given(
    head=st.integers(min_value=0, max_value=2**32 - 1),
    listing=json_values,
    tail=st.binary(max_size=64),
)
def test_a_bad_answer_body_is_a_malformed_session_body(
    head: int, listing: object, tail: bytes
) -> None:
    text = json.dumps(listing).encode()
    for body in (struct.pack(">I", head) + text + tail, struct.pack(">I", len(text)) + text + tail):
        try:
            answers = decode_answers(body)
        except MalformedSessionBody:
            continue
        assert all(isinstance(a, PartitionAnswer) for a in answers)


def test_good_bodies_still_decode() -> None:
    sent = SessionChanges(fetch=[("t-0", 5, 3)], forget=["t-1"])
    changes = decode_changes(encode_changes(sent))
    assert [tuple(f) for f in changes.fetch] == [("t-0", 5, 3)]
    assert list(changes.forget) == ["t-1"]
    answer = PartitionAnswer(key="t-0", offset=0, hw=1, leo=1, log_start=0, data=b"x")
    decoded = decode_answers(b"".join(encode_answers([answer])))
    assert [(a.key, a.hw, a.data) for a in decoded] == [("t-0", 1, b"x")]
