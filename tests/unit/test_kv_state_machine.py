"""The KV state machine's reading of owners: every replica must find the same owner in
the same bytes, as json.loads would, however odd the value (a value can be written by
hand)."""

from __future__ import annotations

import json

import pytest
from pydantic_core import from_json

from ha_sc.kv.api import CreateOp, DeleteOp, UpdateOp
from ha_sc.kv.state_machine import KvState, owner_of, parsed_json

OWNED = b'{"owner":{"key":"t","kind":"topics"},"spec":{"leader":1,"replicas":[1]}}'

ODD_VALUES = [
    OWNED,
    b'{"owner":{"kind":"topics","key":"t"},"owner":{"kind":"topics","key":"u"}}',
    b'{"owner":{"kind":"topics","key":"\\ud800"}}',  # a lone surrogate: jiter refuses
    '{"owner":{"kind":"topics","key":"t"}}'.encode("utf-16"),  # jiter refuses
    b'\xef\xbb\xbf{"owner":{"kind":"topics","key":"t"}}',  # a byte-order mark
    b'{"owner":{"kind":"topics","key":"\\u00e9\\/"}}',
    b'{"\\u006fwner":{"kind":"topics","key":"t"}}',
    b'{"owner":{"kind":"topics","key":"t"},"x":NaN,"y":-Infinity,"z":1e400}',
    b'{"owner":{"kind":"topics","key":"t"},"big":123456789012345678901234567890}',
    b' \r\n\t{"owner":{"kind":"topics","key":"t"}} \n',
    b'{"owner":{"kind":"topics","key":"t"},}',
    b'{"owner":{"kind":"topics","key":"t"}} {}',
    b'{"owner":{"kind":"topics","key":"\xff"}}',
    b'{"owner":{"kind":"topics","key":"\t"}}',
    b'{"owner":{"kind":"topics","key":"t"},"n":01}',
    b'{"owner":{"kind":"topics","key":"t"},"n":nan}',
    b'{"owner":"topics/t"}',
    b'["owner"]',
    b"",
    b"not json",
]


def _json_loads(value: bytes) -> tuple[str, object]:
    try:
        return ("parsed", json.loads(value))
    except ValueError:
        return ("refused", None)


@pytest.mark.parametrize("value", ODD_VALUES)
def test_values_parse_as_json_loads_parses_them(value: bytes) -> None:
    try:
        mine: tuple[str, object] = ("parsed", parsed_json(value))
    except ValueError:
        mine = ("refused", None)
    assert repr(mine) == repr(_json_loads(value))


def test_what_the_fast_parser_refuses_json_loads_still_reads() -> None:
    value = b'{"owner":{"kind":"topics","key":"\\ud800"}}'
    with pytest.raises(ValueError):
        from_json(value)
    assert owner_of(value) == ("topics", "\ud800")


def test_owners_found_in_values() -> None:
    assert owner_of(OWNED) == ("topics", "t")
    assert owner_of(b'{"\\u006fwner":{"kind":"topics","key":"t"}}') == ("topics", "t")
    assert owner_of(ODD_VALUES[1]) == ("topics", "u")  # the last of repeated keys
    assert owner_of(b'{"owner":{"kind":"topics","key":"t"},}') is None
    assert owner_of(b'{"owner":"topics/t"}') is None
    assert owner_of(b"not json") is None


def test_deleting_an_owner_deletes_what_it_owns() -> None:
    state = KvState()
    state.apply_batch(
        [CreateOp("topics", "t", b'{"spec":{}}'), CreateOp("partitions", "t-0", OWNED)]
    )
    state.apply_batch([DeleteOp("topics", "t", None)])
    assert state.get("partitions", "t-0") is None
    assert state.get("topics", "t") is None


def test_a_listing_is_the_state_when_taken_though_built_later() -> None:
    state = KvState()
    state.apply_batch([CreateOp("topics", "a", b"1"), CreateOp("topics", "b", b"2")])
    later = state.listing("topics")
    state.apply_batch(
        [UpdateOp("topics", "a", b"3", expected_revision=1), DeleteOp("topics", "b", None)]
    )
    state.apply_batch([CreateOp("topics", "c", b"4")])
    listing = later()
    assert listing.revision == 2
    assert [(e.key, e.value, e.revision) for e in listing.entries] == [
        ("a", b"1", 1),
        ("b", b"2", 2),
    ]
    assert [(e.key, e.value) for e in state.list("topics").entries] == [("a", b"3"), ("c", b"4")]
