"""The stored value format."""

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from ha_sc.model import (
    Endpoint,
    InvalidObject,
    Kind,
    ObjectMeta,
    OwnerRef,
    Partition,
    PartitionResolution,
    PartitionSpec,
    PartitionStatus,
    ReplicaStatus,
    Spu,
    SpuGroup,
    SpuGroupSpec,
    SpuGroupStatus,
    SpuResolution,
    SpuSpec,
    SpuStatus,
    StoredObject,
    Topic,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    TopicStatus,
    decode_object,
    encode_object,
    encode_value,
    format_validation_error,
    kind_info,
)
from ha_sc.model.codec import DecodedValues

TOPIC_SPEC = b'{"spec":{"replicas":{"computed":{"partitions":2,"replication_factor":1}}}}'


def _decode(kind: Kind, key: str, value: bytes) -> StoredObject[Any, Any]:
    return decode_object(kind, key, value, revision=7, create_revision=5)


def _meta(key: str, owner: OwnerRef | None = None) -> ObjectMeta:
    return ObjectMeta(key=key, revision=7, create_revision=5, owner=owner)


def _topic() -> Topic:
    return Topic(
        meta=_meta("orders"),
        spec=TopicSpec(replicas=TopicReplicas.new_computed(3, 2), retention_time_seconds=60),
        status=TopicStatus(
            resolution=TopicResolution.PROVISIONED,
            replica_map={0: [1, 2], 1: [2, 3], 2: [3, 1]},
        ),
    )


def _assigned_topic() -> Topic:
    return Topic(
        meta=_meta("audit"),
        spec=TopicSpec(replicas=TopicReplicas.new_assigned({0: [5001, 5002], 1: [5002, 5001]})),
        status=TopicStatus(),
    )


def _spu() -> Spu:
    return Spu(
        meta=_meta("custom-spu-5001"),
        spec=SpuSpec(
            id=5001,
            public_endpoint=Endpoint(host="localhost", port=9005),
            private_endpoint=Endpoint(host="localhost", port=9006),
        ),
        status=SpuStatus(resolution=SpuResolution.ONLINE),
    )


def _spu_group() -> SpuGroup:
    return SpuGroup(
        meta=_meta("main"), spec=SpuGroupSpec(replicas=3, min_id=5001), status=SpuGroupStatus()
    )


def _partition() -> Partition:
    return Partition(
        meta=_meta("orders-1", OwnerRef(kind="topics", key="orders")),
        spec=PartitionSpec(leader=2, replicas=[2, 3]),
        status=PartitionStatus(
            resolution=PartitionResolution.ONLINE,
            leader=ReplicaStatus(spu=2, hw=5, leo=6),
            replicas=[ReplicaStatus(spu=3, hw=5, leo=5)],
            lsr=1,
            size=100,
        ),
    )


OBJECTS = [
    (Kind.TOPIC, _topic()),
    (Kind.TOPIC, _assigned_topic()),
    (Kind.SPU, _spu()),
    (Kind.SPU_GROUP, _spu_group()),
    (Kind.PARTITION, _partition()),
]


@pytest.mark.parametrize(("kind", "obj"), OBJECTS)
def test_round_trip(kind: Kind, obj: StoredObject[BaseModel, BaseModel]) -> None:
    value = encode_object(obj)
    decoded = _decode(kind, obj.key, value)
    assert decoded == obj
    assert type(decoded) is kind_info(kind).object_type
    assert encode_object(decoded) == value


def test_encoding_is_compact_sorted_and_without_nulls() -> None:
    value = encode_object(_topic())
    assert value == (
        b'{"spec":{"replicas":{"computed":{"ignore_rack_assignment":false,"partitions":3,'
        b'"replication_factor":2}},"retention_time_seconds":60},'
        b'"status":{"reason":"","replica_map":{"0":[1,2],"1":[2,3],"2":[3,1]},'
        b'"resolution":"Provisioned"}}'
    )


def test_assigned_topic_encoding() -> None:
    assert encode_object(_assigned_topic()) == (
        b'{"spec":{"replicas":{"assigned":{"maps":[{"id":0,"replicas":[5001,5002]},'
        b'{"id":1,"replicas":[5002,5001]}]}}},'
        b'"status":{"reason":"","replica_map":{},"resolution":"Init"}}'
    )


def test_owner_is_encoded() -> None:
    doc = json.loads(encode_object(_partition()))
    assert doc["owner"] == {"kind": "topics", "key": "orders"}


def test_encode_value_without_status_or_owner() -> None:
    spec = SpuGroupSpec(replicas=1)
    assert encode_value(spec) == b'{"spec":{"min_id":0,"replicas":1,"spu_config":{}}}'


def test_decode_hand_written_without_status() -> None:
    value = b"""{
        "spec": {"replicas": {"computed": {"partitions": 2, "replication_factor": 1}}}
    }"""
    topic = _decode(Kind.TOPIC, "orders", value)
    assert type(topic) is Topic
    assert topic.status == TopicStatus()
    assert topic.meta == ObjectMeta(key="orders", revision=7, create_revision=5)
    assert topic.key == "orders"
    assert topic.spec.partition_count() == 2


def test_decode_null_status_is_default() -> None:
    spu = _decode(
        Kind.SPU,
        "s1",
        b'{"spec":{"id":1,"public_endpoint":{"host":"h","port":1},'
        b'"private_endpoint":{"host":"h","port":2}},"status":null}',
    )
    assert spu.status == SpuStatus()


def _error(kind: Kind, key: str, value: bytes) -> InvalidObject:
    with pytest.raises(InvalidObject) as info:
        _decode(kind, key, value)
    assert info.value.kind is kind
    assert info.value.key == key
    assert str(info.value) == f"{kind}/{key}: {info.value.reason}"
    return info.value


def test_decode_error_names_field() -> None:
    error = _error(
        Kind.TOPIC,
        "orders",
        b'{"spec":{"replicas":{"computed":{"partitions":0,"replication_factor":1}}}}',
    )
    assert str(error) == (
        "topics/orders: spec.replicas.computed.partitions: "
        "Input should be greater than or equal to 1"
    )


def test_decode_error_assigned_rule() -> None:
    value = b'{"spec":{"replicas":{"assigned":{"maps":[{"id":1,"replicas":[1]}]}}}}'
    assert _error(Kind.TOPIC, "orders", value).reason == (
        "spec.replicas.assigned.maps: partition ids must start at 0, found 1"
    )


def test_decode_error_lists_spec_and_status_problems() -> None:
    value = (
        b'{"spec":{"replicas":{"computed":{"partitions":1,"replication_factor":1}},"x":1},'
        b'"status":{"resolution":"Ready"}}'
    )
    reason = _error(Kind.TOPIC, "orders", value).reason
    assert reason.startswith("spec.x: Extra inputs are not permitted; status.resolution: ")


def test_decode_error_bad_owner() -> None:
    value = b'{"spec":{"leader":1,"replicas":[1]},"owner":{"kind":"topics"}}'
    assert _error(Kind.PARTITION, "orders-0", value).reason == "owner.key: Field required"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{", "value is not valid JSON: "),
        (b"\xff", "value is not valid JSON: "),
        (b"[]", "value must be a JSON object"),
        (b"{}", "spec: Field required"),
        (b'{"status":{}}', "spec: Field required"),
        (TOPIC_SPEC[:-1] + b',"metadata":{}}', "metadata: Extra inputs are not permitted"),
        (b'{"spec":[]}', "spec: Input should be an object"),
    ],
)
def test_decode_error_bad_value(value: bytes, reason: str) -> None:
    assert _error(Kind.TOPIC, "orders", value).reason.startswith(reason)


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        (Kind.TOPIC, "Orders"),
        (Kind.TOPIC, ""),
        (Kind.PARTITION, "orders"),
        (Kind.PARTITION, "Orders-0"),
        (Kind.SPU, "spu_1"),
        (Kind.SPU_GROUP, "-main"),
    ],
)
def test_decode_error_bad_key(kind: Kind, key: str) -> None:
    assert _error(kind, key, TOPIC_SPEC).reason.startswith("key: ")


def test_stored_object_is_frozen() -> None:
    topic = _topic()
    with pytest.raises(ValidationError):
        topic.status = TopicStatus()  # type: ignore[misc]
    with pytest.raises(ValidationError):
        topic.meta.revision = 8  # type: ignore[misc]


def test_format_validation_error_joins_errors() -> None:
    with pytest.raises(ValidationError) as info:
        Endpoint.model_validate({"host": "", "port": 0})
    assert format_validation_error(info.value, prefix="public_endpoint") == (
        "public_endpoint.host: String should have at least 1 character; "
        "public_endpoint.port: Input should be greater than or equal to 1"
    )


def test_kind_segments() -> None:
    assert [k.value for k in Kind] == ["spus", "spugroups", "topics", "partitions"]
    assert kind_info(Kind.TOPIC).spec_type is TopicSpec
    assert kind_info(Kind.PARTITION).validate_key("orders-0") == "orders-0"


@pytest.mark.parametrize(("kind", "obj"), OBJECTS)
def test_decoded_object_is_what_model_construct_builds(
    kind: Kind, obj: StoredObject[BaseModel, BaseModel]
) -> None:
    """decode_object assembles the object without model_construct; pydantic must see
    the same model: fields, fields set, extras, private state, copies, hashing."""
    decoded = _decode(kind, obj.key, encode_object(obj))
    meta = decoded.meta
    built_meta = ObjectMeta.model_construct(**dict(meta))
    built = type(decoded).model_construct(meta=built_meta, spec=decoded.spec, status=decoded.status)
    for mine, theirs in ((meta, built_meta), (decoded, built)):
        assert mine == theirs
        assert mine.__pydantic_fields_set__ == theirs.__pydantic_fields_set__
        assert mine.__pydantic_extra__ == theirs.__pydantic_extra__
        assert mine.__pydantic_private__ == theirs.__pydantic_private__
        assert mine.model_dump() == theirs.model_dump()
        assert mine.model_copy(update={}) == theirs
    assert hash(meta) == hash(built_meta)
    assert decoded.model_copy(update={"status": obj.status}).status == obj.status


def test_a_value_seen_before_is_not_validated_again() -> None:
    seen = DecodedValues(Kind.PARTITION)
    value = encode_object(_partition())
    first = decode_object(Kind.PARTITION, "t-0", value, revision=3, create_revision=3, seen=seen)
    second = decode_object(Kind.PARTITION, "t-1", value, revision=4, create_revision=4, seen=seen)
    assert seen.hits == 1
    assert (second.key, second.meta.revision) == ("t-1", 4)
    assert second.spec is first.spec and second.status is first.status
    assert second == _decode(Kind.PARTITION, "t-1", value).model_copy(update={"meta": second.meta})


def test_values_seen_are_still_checked_for_their_key() -> None:
    seen = DecodedValues(Kind.PARTITION)
    value = encode_object(_partition())
    decode_object(Kind.PARTITION, "t-0", value, revision=3, create_revision=3, seen=seen)
    with pytest.raises(InvalidObject, match="key: "):
        decode_object(Kind.PARTITION, "no index", value, revision=4, create_revision=4, seen=seen)


def test_invalid_values_are_not_kept_and_a_full_memory_starts_afresh() -> None:
    seen = DecodedValues(Kind.TOPIC, size=2)
    for _ in range(2):
        with pytest.raises(InvalidObject):
            decode_object(Kind.TOPIC, "t", b'{"spec":{}}', revision=1, create_revision=1, seen=seen)
    assert len(seen) == 0
    values = [TOPIC_SPEC, encode_object(_topic()), encode_object(_assigned_topic())]
    for revision, value in enumerate(values, 1):
        decode_object(Kind.TOPIC, "t", value, revision=revision, create_revision=1, seen=seen)
    assert len(seen) == 1
    assert seen.get(TOPIC_SPEC) is None
    assert seen.get(values[2]) is not None


def test_values_of_one_kind_do_not_decode_another() -> None:
    with pytest.raises(ValueError, match="cannot decode"):
        decode_object(
            Kind.TOPIC, "t", TOPIC_SPEC, revision=1, create_revision=1, seen=DecodedValues(Kind.SPU)
        )


def _sorted_json(spec: BaseModel, status: BaseModel | None, owner: OwnerRef | None) -> bytes:
    """The stored format spelled out: the envelope's dump, keys sorted, compact."""
    doc: dict[str, Any] = {"spec": spec.model_dump(mode="json", exclude_none=True)}
    if status is not None:
        doc["status"] = status.model_dump(mode="json", exclude_none=True)
    if owner is not None:
        doc["owner"] = owner.model_dump(mode="json", exclude_none=True)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_values_built_from_remembered_parts_are_the_stored_format() -> None:
    owner = OwnerRef(kind="topics", key="orders", create_revision=9)
    first = PartitionStatus(
        resolution=PartitionResolution.ONLINE,
        leader=ReplicaStatus(spu=5001, hw=0, leo=0),
        replicas=[ReplicaStatus(spu=5002, hw=0, leo=0)],
        lsr=1,
    )
    topic = _topic()
    parts: list[tuple[BaseModel, BaseModel | None, OwnerRef | None]] = [
        (PartitionSpec(leader=5001, replicas=[5001, 5002]), first, owner),
        (PartitionSpec(leader=5001, replicas=[5001, 5002]), first, owner),  # equal, not same
        (PartitionSpec(leader=5002, replicas=[5002, 5001]), first, owner),
        (topic.spec, topic.status, None),
        (topic.spec, topic.status.model_copy(update={"reason": "é"}), None),
        (_assigned_topic().spec, None, None),
        (SpuGroupSpec(replicas=1), None, OwnerRef(kind="topics", key="orders")),
    ]
    for spec, status, owner_ref in parts * 2:  # the second time from what was remembered
        assert encode_value(spec, status, owner_ref) == _sorted_json(spec, status, owner_ref)


def test_a_changed_part_is_encoded_anew() -> None:
    spec = PartitionSpec(leader=5001, replicas=[5001, 5002])
    online = PartitionStatus(resolution=PartitionResolution.ONLINE)
    assert b'"resolution":"Online"' in encode_value(spec, online)
    offline = online.model_copy(update={"resolution": PartitionResolution.LEADER_OFFLINE})
    assert b'"resolution":"LeaderOffline"' in encode_value(spec, offline)
    assert encode_value(spec, online) == _sorted_json(spec, online, None)
