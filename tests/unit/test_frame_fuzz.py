"""Bad bytes on the control channel end in ProtocolError, the protocol's own error, nothing else.

A frame is a 4-byte length then UTF-8 JSON. Whatever arrives (random bytes, JSON that is
not an object, large frames that take the chunked full-sync path) the decoder either
returns messages or raises ProtocolError; no AttributeError, RecursionError, KeyError or
other exception escapes to the connection's task.
"""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from ha_sc.protocol import ProtocolError, sc_message_decoder, spu_message_decoder
from ha_sc.protocol.data import MalformedHeader, decode_header
from ha_sc.protocol.framing import LARGE_PAYLOAD, MessageDecoder

DECODERS: list[Callable[[], MessageDecoder[Any]]] = [sc_message_decoder, spu_message_decoder]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize(
    "doc",
    [["a", "b"], "x" * (LARGE_PAYLOAD + 10), [0] * (LARGE_PAYLOAD // 2), 7, None],
)
def test_a_json_frame_that_is_not_an_object_is_a_protocol_error(
    decoder: Callable[[], MessageDecoder[Any]], doc: object
) -> None:
    with pytest.raises(ProtocolError):
        decoder().feed(_frame(json.dumps(doc).encode()))


@pytest.mark.parametrize("decoder", DECODERS)
def test_deeply_nested_large_json_is_a_protocol_error(
    decoder: Callable[[], MessageDecoder[Any]],
) -> None:
    depth = LARGE_PAYLOAD
    with pytest.raises(ProtocolError):
        decoder().feed(_frame(b"[" * depth + b"]" * depth))


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_protocol_error(data: bytes) -> None:
    for make in DECODERS:
        with contextlib.suppress(ProtocolError):
            make().feed(data)
        with contextlib.suppress(ProtocolError):
            make().feed(_frame(data))


@settings(max_examples=150, deadline=None)
@given(doc=json_values)
def test_arbitrary_json_values_raise_only_protocol_error(doc: object) -> None:
    for make in DECODERS:
        with contextlib.suppress(ProtocolError):
            make().feed(_frame(json.dumps(doc).encode()))


def test_a_deeply_nested_data_header_is_a_malformed_header() -> None:
    head = b"[" * 50_000 + b"]" * 50_000
    assert isinstance(decode_header(head, TypeAdapter(dict[str, int]), "client"), MalformedHeader)
