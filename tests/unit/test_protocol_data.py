"""The data-plane frames: header and opaque body survive any split; bad frames are named."""

from __future__ import annotations

import struct

import pytest

from ha_sc.protocol.data import (
    MAX_DATA_FRAME,
    Acks,
    DataError,
    DataFrameError,
    ErrorCode,
    FetchResponse,
    MalformedHeader,
    ProduceRequest,
    ProduceResponse,
    encode_frame,
    request_decoder,
    response_decoder,
)


def _bytes(pieces: list[bytes | bytearray | memoryview]) -> bytes:
    return b"".join(bytes(p) for p in pieces)


def test_a_request_and_its_body_arrive_whole_through_one_byte_pieces() -> None:
    body = bytes(range(256)) * 4
    wire = _bytes(encode_frame(ProduceRequest(id=7, topic="t", partition=2, acks=Acks.ALL), body))
    wire += _bytes(encode_frame(ProduceRequest(id=8, topic="t", partition=0)))
    decoder = request_decoder()
    frames = []
    for i in range(len(wire)):
        frames += decoder.feed(wire[i : i + 1])
    assert [(h.id, h.partition, h.acks, b) for h, b in frames] == [
        (7, 2, Acks.ALL, body),
        (8, 0, Acks.LEADER, b""),
    ]


def test_a_response_carries_its_error_with_the_leader() -> None:
    error = DataError(code=ErrorCode.NOT_LEADER, message="spu 5002 leads t-0", leader=5002)
    wire = _bytes(encode_frame(ProduceResponse(id=3, error=error)))
    wire += _bytes(encode_frame(FetchResponse(id=4, hw=10, leo=12), b"batches"))
    (first, _), (second, body) = response_decoder().feed(wire)
    assert first.error == error and first.base_offset is None
    assert (second.hw, second.leo, body) == (10, 12, b"batches")


def test_a_bad_header_is_answered_and_the_stream_goes_on() -> None:
    head = b'{"type": "produce", "id": 9, "topic": "t", "partition": -1}'
    wire = struct.pack(">II", 4 + len(head), len(head)) + head
    wire += _bytes(encode_frame(ProduceRequest(id=10, topic="t", partition=0)))
    (bad, _), (good, _) = request_decoder().feed(wire)
    assert isinstance(bad, MalformedHeader) and bad.id == 9 and "partition" in bad.reason
    assert good.id == 10


def test_an_unknown_type_or_non_json_header_is_malformed_without_an_id() -> None:
    head = b"not json"
    wire = struct.pack(">II", 4 + len(head), len(head)) + head
    ((bad, _),) = request_decoder().feed(wire)
    assert isinstance(bad, MalformedHeader) and bad.id is None


@pytest.mark.parametrize(
    "prefix",
    [struct.pack(">II", MAX_DATA_FRAME + 1, 10), struct.pack(">II", 10, 20)],
    ids=["frame too large", "header longer than frame"],
)
def test_broken_framing_breaks_the_stream(prefix: bytes) -> None:
    decoder = request_decoder()
    with pytest.raises(DataFrameError):
        decoder.feed(prefix)
    with pytest.raises(DataFrameError, match="already broken"):
        decoder.feed(b"")
