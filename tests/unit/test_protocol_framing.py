"""The control channel's messages and frames, with no sockets."""

from __future__ import annotations

import json
import re
import struct

import pytest

from ha_sc.model import Endpoint, SpuSpec
from ha_sc.model.partition import validate_partition_key
from ha_sc.protocol import (
    MAX_FRAME_SIZE,
    Delta,
    FullSync,
    Message,
    NotLeader,
    ProtocolError,
    Refused,
    Register,
    ReplicaReport,
    ReplicaSpec,
    StatusReport,
    encode_message,
    format_address,
    parse_address,
    sc_message_decoder,
    spu_message_decoder,
)
from ha_sc.protocol.framing import LARGE_PAYLOAD, SPEC_CHUNK
from ha_sc.protocol.messages import PARTITION_KEY_PATTERN


def spu(spu_id: int) -> SpuSpec:
    return SpuSpec(
        id=spu_id,
        public_endpoint=Endpoint(host="127.0.0.1", port=9005),
        private_endpoint=Endpoint(host="127.0.0.1", port=9006),
        rack="r1",
    )


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


SPU_MESSAGES: list[Message] = [
    Register(spu_id=5001),
    StatusReport(
        spu_id=5001,
        replicas=[
            ReplicaReport(partition="orders-0", leo=10, hw=7, lsr=1),
            ReplicaReport(partition="orders-1", leo=0, hw=0),
        ],
    ),
]

SC_MESSAGES: list[Message] = [
    NotLeader(epoch=3, leader_private="127.0.0.1:9104"),
    NotLeader(epoch=0, leader_private=None),
    Refused(epoch=4, reason="spu 9 is not registered"),
    FullSync(
        epoch=4,
        trace={"traceparent": "00-abc-def-01"},
        spus=[spu(5001), spu(5002)],
        replicas=[ReplicaSpec(partition="orders-0", leader=5001, replicas=[5001, 5002])],
    ),
    Delta(
        epoch=4,
        spus_changed=[spu(5003)],
        spus_removed=[5002],
        replicas_changed=[ReplicaSpec(partition="orders-1", leader=5003, replicas=[5003])],
        replicas_removed=["orders-0"],
    ),
    Delta(epoch=4),
]


@pytest.mark.parametrize("message", SPU_MESSAGES, ids=lambda m: m.type)
def test_spu_messages_round_trip(message: Message) -> None:
    assert spu_message_decoder().feed(encode_message(message)) == [message]


@pytest.mark.parametrize("message", SC_MESSAGES, ids=lambda m: m.type)
def test_sc_messages_round_trip(message: Message) -> None:
    assert sc_message_decoder().feed(encode_message(message)) == [message]


def test_the_wire_form_is_a_length_and_a_json_object_with_its_type() -> None:
    data = encode_message(Register(spu_id=5001))
    (size,) = struct.unpack(">I", data[:4])
    assert size == len(data) - 4
    assert json.loads(data[4:]) == {"type": "register", "spu_id": 5001, "left_epoch": None}


def test_every_sc_message_carries_epoch_and_trace() -> None:
    for message in SC_MESSAGES:
        doc = json.loads(encode_message(message)[4:])
        assert isinstance(doc["epoch"], int)
        assert isinstance(doc["trace"], dict)


def test_frames_split_anywhere_and_run_together_decode_in_order() -> None:
    stream = b"".join(encode_message(m) for m in SC_MESSAGES)
    for piece in (1, 3, 7, 64):
        decoder = sc_message_decoder()
        got: list[object] = []
        for start in range(0, len(stream), piece):
            got.extend(decoder.feed(stream[start : start + piece]))
        assert got == SC_MESSAGES
        assert decoder.buffered == 0


def test_a_partial_frame_waits_for_the_rest() -> None:
    data = encode_message(Register(spu_id=7))
    decoder = spu_message_decoder()
    assert decoder.feed(data[:2]) == []
    assert decoder.feed(data[2:-1]) == []
    assert decoder.buffered == len(data) - 1
    assert decoder.feed(data[-1:]) == [Register(spu_id=7)]


def test_unknown_fields_are_ignored_for_compatibility() -> None:
    payload = b'{"type":"register","spu_id":5,"features":["x"]}'
    assert spu_message_decoder().feed(frame(payload)) == [Register(spu_id=5)]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"type": "register", "spu_id": ', "frame is not valid JSON"),
        (b"", "frame is not valid JSON"),
        (b"\xff\xfe{}", "frame is not valid UTF-8"),
        (b"[1, 2]", "frame is not a JSON object"),
        (b'{"spu_id": 1}', "message has no 'type' field"),
        (b'{"type": "hello"}', "unknown message type 'hello' from the spu"),
        (b'{"type": "full_sync", "epoch": 1}', "unknown message type 'full_sync' from the spu"),
        (b'{"type": "register", "spu_id": -1}', "invalid register message: spu_id"),
        (b'{"type": "register"}', "invalid register message: spu_id: Field required"),
        (
            b'{"type":"status_report","spu_id":1,'
            b'"replicas":[{"partition":"bad key","leo":0,"hw":0}]}',
            "invalid status_report message: replicas.0.partition",
        ),
    ],
)
def test_a_malformed_frame_from_an_spu_names_what_is_wrong(payload: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason.replace("(", r"\(")):
        spu_message_decoder().feed(frame(payload))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"type": "register", "spu_id": 1}', "unknown message type 'register' from the sc"),
        (b'{"type": "full_sync"}', "invalid full_sync message: epoch: Field required"),
        (
            b'{"type":"delta","epoch":1,"replicas_changed":'
            b'[{"partition":"t-0","leader":3,"replicas":[1,2]}]}',
            "leader 3 is not one of the replicas",
        ),
        (b'{"type":"not_leader","epoch":-2,"leader_private":null}', "epoch"),
    ],
)
def test_a_malformed_frame_from_the_sc_names_what_is_wrong(payload: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        sc_message_decoder().feed(frame(payload))


def test_an_oversize_frame_is_refused_from_its_header_alone() -> None:
    decoder = spu_message_decoder()
    header = struct.pack(">I", MAX_FRAME_SIZE + 1)
    with pytest.raises(ProtocolError, match=r"frame of 16777217 bytes exceeds the 16777216"):
        decoder.feed(header)


def test_a_frame_at_the_limit_is_fine() -> None:
    decoder = spu_message_decoder(max_frame=40)
    payload = b'{"type":"register","spu_id":1}'.ljust(40)
    assert decoder.feed(frame(payload)) == [Register(spu_id=1)]


def test_encoding_refuses_an_oversize_message() -> None:
    with pytest.raises(ProtocolError, match="register message of 48 bytes exceeds the 10-byte"):
        encode_message(Register(spu_id=1), max_frame=10)


def test_a_broken_stream_stays_broken() -> None:
    decoder = spu_message_decoder()
    good = encode_message(Register(spu_id=1))
    with pytest.raises(ProtocolError):
        decoder.feed(frame(b"nope"))
    with pytest.raises(ProtocolError, match="stream already broken: frame is not valid JSON"):
        decoder.feed(good)


def test_messages_before_a_bad_frame_in_the_same_feed_are_lost_with_the_stream() -> None:
    decoder = spu_message_decoder()
    with pytest.raises(ProtocolError):
        decoder.feed(encode_message(Register(spu_id=1)) + frame(b"{}"))


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:9004", ("127.0.0.1", 9004)),
        ("[::1]:9004", ("::1", 9004)),
        ("sc-a:0", ("sc-a", 0)),
    ],
)
def test_addresses_parse_and_format(text: str, parsed: tuple[str, int]) -> None:
    assert parse_address(text) == parsed
    assert format_address(*parsed) == text


@pytest.mark.parametrize("text", ["9004", ":9004", "host:", "host:port", "host:70000", "[]:1"])
def test_bad_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="address"):
        parse_address(text)


@pytest.mark.parametrize("count", [SPEC_CHUNK, SPEC_CHUNK + 1, 3 * SPEC_CHUNK + 17])
def test_a_large_full_sync_encoded_in_chunks_reads_back_whole(count: int) -> None:
    """Past SPEC_CHUNK specs the payload is assembled from chunks; same message back."""
    message = FullSync(
        epoch=9,
        trace={"traceparent": "00-abc-def-01"},
        spus=[spu(5001), spu(5002)],
        replicas=[
            ReplicaSpec(partition=f"t-{i}", leader=5001 + i % 2, replicas=[5001, 5002])
            for i in range(count)
        ],
        sc_members=["127.0.0.1:9004", "127.0.0.1:9104"],
    )
    wire = encode_message(message)
    assert sc_message_decoder().feed(wire) == [message]
    doc = json.loads(wire[4:])
    if count > SPEC_CHUNK:  # the same document, but unset storage settings are left out
        assert doc == json.loads(message.model_dump_json(exclude_none=True))
        assert doc["replicas"][0]["storage"] == {}
    else:
        assert doc == json.loads(message.model_dump_json())


def _large_full_sync(count: int) -> FullSync:
    return FullSync(
        epoch=9,
        spus=[spu(5001), spu(5002)],
        replicas=[
            ReplicaSpec(partition=f"topic-with-a-long-name-{i}", leader=5001, replicas=[5001, 5002])
            for i in range(count)
        ],
    )


def test_a_large_full_sync_is_decoded_in_chunks_to_the_same_message() -> None:
    message = _large_full_sync(6000)
    wire = encode_message(message)
    assert len(wire) > LARGE_PAYLOAD
    decoder = sc_message_decoder()
    assert decoder.feed(wire[:1000]) == []
    assert decoder.feed(wire[1000:]) == [message]


def test_a_bad_spec_deep_in_a_large_full_sync_is_named() -> None:
    doc = json.loads(_large_full_sync(6000).model_dump_json())
    doc["replicas"][5000]["leader"] = "nobody"
    with pytest.raises(ProtocolError, match=r"replicas\.5000\.leader"):
        sc_message_decoder().feed(frame(json.dumps(doc).encode()))


@pytest.mark.parametrize(
    "key",
    ["orders-0", "a-12", "x" * 63 + "-7", "my-topic-3", "0-0"],
)
def test_the_wire_partition_key_pattern_takes_what_the_model_takes(key: str) -> None:
    assert validate_partition_key(key) == key
    assert re.fullmatch(PARTITION_KEY_PATTERN, key)


@pytest.mark.parametrize(
    "key",
    [
        "orders",
        "orders-",
        "-1",
        "Orders-0",
        "orders-01",
        "orders--0x",
        "x" * 64 + "-0",
        "a_b-0",
        "orders-0-",
        "-orders-0",
    ],
)
def test_the_wire_partition_key_pattern_refuses_what_the_model_refuses(key: str) -> None:
    with pytest.raises(ValueError):
        validate_partition_key(key)
    assert not re.fullmatch(PARTITION_KEY_PATTERN, key)


def _large_status_report(count: int) -> StatusReport:
    return StatusReport(
        spu_id=5001,
        replicas=[
            ReplicaReport(partition=f"topic-with-a-long-name-{i}", leo=i, hw=i, lsr=1)
            for i in range(count)
        ],
    )


def test_a_large_full_status_report_is_decoded_in_chunks_to_the_same_message() -> None:
    message = _large_status_report(6000)
    wire = encode_message(message)
    assert len(wire) > LARGE_PAYLOAD
    decoder = spu_message_decoder()
    assert decoder.feed(wire[:1000]) == []
    assert decoder.feed(wire[1000:]) == [message]


def test_a_bad_replica_deep_in_a_large_status_report_is_named() -> None:
    doc = json.loads(_large_status_report(6000).model_dump_json())
    doc["replicas"][5000]["leo"] = "far"
    with pytest.raises(ProtocolError, match=r"replicas\.5000\.leo"):
        spu_message_decoder().feed(frame(json.dumps(doc).encode()))
