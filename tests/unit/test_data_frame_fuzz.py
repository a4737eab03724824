"""Bad bytes on an SPU data port end in DataFrameError (the framing's own error) or a
MalformedHeader (answered ``malformed``), nothing else; and the decoder never holds more
than one frame's worth of what it was sent.

Frames are ``u32 total | u32 header length | JSON header | body``. Hypothesis builds
random bytes, frames whose lengths lie, headers that are random JSON or near-valid
requests, and feeds them in random chunk sizes to both directions' decoders.
"""

from __future__ import annotations

import contextlib
import json
import struct
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ha_sc.protocol.data import (
    LARGE_BODY,
    MAX_DATA_FRAME,
    MAX_HEADER,
    SMALL_PIECE,
    DataFrameDecoder,
    DataFrameError,
    MalformedHeader,
    request_decoder,
    response_decoder,
    write_frame,
)

DECODERS: list[Callable[[], DataFrameDecoder]] = [request_decoder, response_decoder]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
near_requests = st.fixed_dictionaries(
    {"type": st.sampled_from(["produce", "fetch", "replica_fetch", "fetch_response", "x"])},
    optional={
        "id": st.integers(min_value=-(2**70), max_value=2**70) | st.text() | st.none(),
        "topic": st.text(max_size=20) | st.integers(),
        "partition": st.integers(min_value=-5, max_value=2**40),
        "offset": st.integers(min_value=-5, max_value=2**70),
        "max_bytes": st.integers(min_value=-5, max_value=2**70),
        "wait_ms": st.integers(min_value=-5, max_value=2**70),
        "follower": st.integers(min_value=-5, max_value=2**40) | st.text(),
        "acks": st.text(max_size=8),
        "isolation": st.text(max_size=12),
    },
)


def _frame(head: bytes, body: bytes = b"") -> bytes:
    return struct.pack(">II", 4 + len(head) + len(body), len(head)) + head + body


def _feed_in_chunks(make: Callable[[], DataFrameDecoder], data: bytes, chunk: int) -> None:
    """Feed ``data`` ``chunk`` bytes at a time; only the framing's error may escape, and
    every frame out is a message or a MalformedHeader."""
    decoder = make()
    with contextlib.suppress(DataFrameError):
        for start in range(0, len(data), chunk):
            for header, body in decoder.feed(data[start : start + chunk]):
                assert isinstance(body, bytes)
                assert isinstance(header, MalformedHeader) or hasattr(header, "type")
            assert decoder.buffered <= 8 + MAX_DATA_FRAME


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2048), chunk=st.integers(min_value=1, max_value=64))
def test_arbitrary_bytes_raise_only_the_framing_error(data: bytes, chunk: int) -> None:
    for make in DECODERS:
        _feed_in_chunks(make, data, chunk)


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(min_value=0, max_value=2**32 - 1),
    head_len=st.integers(min_value=0, max_value=2**32 - 1),
    rest=st.binary(max_size=256),
)
def test_lying_lengths_raise_only_the_framing_error(total: int, head_len: int, rest: bytes) -> None:
    for make in DECODERS:
        _feed_in_chunks(make, struct.pack(">II", total, head_len) + rest, 7)


@settings(max_examples=200, deadline=None)
@given(doc=json_values | near_requests, body=st.binary(max_size=64), chunk=st.integers(1, 32))
def test_random_headers_are_messages_or_malformed(doc: object, body: bytes, chunk: int) -> None:
    frame = _frame(json.dumps(doc).encode(), body)
    for make in DECODERS:
        _feed_in_chunks(make, frame * 2, chunk)


@settings(max_examples=100, deadline=None)
@given(head=st.binary(max_size=300))
def test_random_header_bytes_in_intact_framing_are_malformed_not_fatal(head: bytes) -> None:
    decoder = request_decoder()
    frames = decoder.feed(_frame(head) + _frame(b'{"type":"fetch","id":1,"topic":"t",'
                                                 b'"partition":0,"offset":0}'))  # fmt: skip
    assert len(frames) == 2
    assert frames[1][0].type == "fetch"


@pytest.mark.parametrize("make", DECODERS)
def test_a_frame_over_the_limit_is_refused_from_its_length_alone(
    make: Callable[[], DataFrameDecoder],
) -> None:
    with pytest.raises(DataFrameError):
        make().feed(struct.pack(">II", MAX_DATA_FRAME + 1, 10))
    with pytest.raises(DataFrameError):
        make().feed(struct.pack(">II", 1000, MAX_HEADER + 1))


@pytest.mark.parametrize("make", DECODERS)
def test_a_frame_announced_large_costs_only_the_bytes_actually_sent(
    make: Callable[[], DataFrameDecoder],
) -> None:
    """A peer announcing a 60 MiB frame and sending 4 KiB of it makes the decoder hold
    about 4 KiB, not 60 MiB."""
    decoder = make()
    tracemalloc.start()
    try:
        decoder.feed(struct.pack(">II", 60 << 20, 20) + b"x" * 4096)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder.buffered == 8 + 4096
    assert peak < 1 << 20


_FETCH = b'{"type":"fetch","id":1,"topic":"t","partition":0,"offset":0}'


@settings(max_examples=30, deadline=None)
@given(
    extras=st.lists(st.integers(min_value=0, max_value=3 * LARGE_BODY), min_size=1, max_size=4),
    chunk=st.integers(min_value=1000, max_value=3 * LARGE_BODY),
)
def test_large_and_small_bodies_come_out_whole_whatever_the_chunks(
    extras: list[int], chunk: int
) -> None:
    """Bodies past ``LARGE_BODY`` are gathered from the pieces received (and the next
    frame's start cut off the last piece): every frame comes out whole, in order, and
    ``buffered`` counts every byte held."""
    bodies = [bytes([n % 251]) * size + b"end%d" % n for n, size in enumerate(extras)]
    stream = b"".join(_frame(_FETCH, body) for body in bodies)
    decoder = request_decoder()
    out: list[bytes] = []
    taken = 0
    for start in range(0, len(stream), chunk):
        piece = stream[start : start + chunk]
        frames = decoder.feed(piece)
        out.extend(body for _, body in frames)
        taken += len(piece)
        done = sum(len(_frame(_FETCH, body)) for body in out)
        assert decoder.buffered == taken - done
    assert out == bodies
    assert decoder.buffered == 0


def test_a_frame_is_written_as_small_pieces_joined_and_large_ones_alone() -> None:
    large = b"r" * SMALL_PIECE
    writes: list[bytes] = []
    write_frame(lambda piece: writes.append(bytes(piece)), [b"head", b"list", large, b"tail"])
    assert writes == [b"headlist", large, b"tail"]
