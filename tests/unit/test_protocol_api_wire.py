"""The public API's JSON forms, without sockets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ha_sc.api import ROUTES, openapi_document
from ha_sc.model import (
    Kind,
    ObjectMeta,
    OwnerRef,
    PartitionSpec,
    PartitionStatus,
    Topic,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    TopicStatus,
)
from ha_sc.model.kinds import Partition
from ha_sc.protocol.api_wire import (
    CreateTopicRequest,
    LeaderInfo,
    LeaderReport,
    RegisterSpuRequest,
    WatchBatch,
    WireError,
    first_error_field,
    object_from_json,
    object_json,
    parse_kinds,
    split_host_port,
)


def topic() -> Topic:
    return Topic(
        meta=ObjectMeta(key="orders", revision=7, create_revision=5),
        spec=TopicSpec(replicas=TopicReplicas.new_computed(2, 1), retention_time_seconds=60),
        status=TopicStatus(
            resolution=TopicResolution.PROVISIONED, replica_map={0: [5001], 1: [5002]}
        ),
    )


def test_an_object_survives_the_round_trip() -> None:
    doc = object_json(topic())
    assert doc["name"] == "orders"
    assert doc["meta"] == {"revision": 7, "create_revision": 5, "owner": None}
    assert "segment_size" not in doc["spec"]  # unset spec fields are left out
    assert object_from_json(Kind.TOPIC, doc) == topic()


def test_an_owned_object_keeps_its_owner() -> None:
    partition = Partition(
        meta=ObjectMeta(key="orders-0", owner=OwnerRef(kind="topics", key="orders")),
        spec=PartitionSpec(leader=5001, replicas=[5001]),
        status=PartitionStatus(),
    )
    assert object_from_json(Kind.PARTITION, object_json(partition)) == partition


@pytest.mark.parametrize(
    "doc",
    [[], {"spec": {}}, {"name": "orders", "spec": {"replicas": {}}}, {"name": "x", "meta": 3}],
)
def test_malformed_objects_are_refused(doc: object) -> None:
    with pytest.raises(WireError):
        object_from_json(Kind.TOPIC, doc)


def test_a_bad_topic_name_is_reported_in_the_name_rules_words() -> None:
    with pytest.raises(ValidationError) as invalid:
        CreateTopicRequest.model_validate({"name": "Orders", "spec": {}})
    assert first_error_field(invalid.value) == "name"
    messages = [e["msg"] for e in invalid.value.errors()]
    assert messages[0] == ("topic name 'Orders' may contain only lowercase letters, digits and '-'")


def test_a_spu_registration_needs_a_name_and_endpoints() -> None:
    with pytest.raises(ValidationError) as invalid:
        RegisterSpuRequest.model_validate({"id": 1, "name": "a b"})
    fields = {".".join(map(str, e["loc"])) for e in invalid.value.errors()}
    assert fields == {"name", "public_endpoint", "private_endpoint"}


def test_watch_batches_and_heartbeats_round_trip() -> None:
    batch = WatchBatch(Kind.TOPIC, True, (topic(),), ("old",), 3, 42)
    assert WatchBatch.from_json(batch.to_json()) == batch
    beat = WatchBatch(None, False, (), (), None, 42)
    assert beat.to_json() == {"heartbeat": True, "leader_epoch": None, "revision": 42}
    assert WatchBatch.from_json(beat.to_json()) == beat
    assert beat.is_heartbeat


def test_a_leader_report_round_trips() -> None:
    report = LeaderReport("sc-b", "standby", LeaderInfo("sc-a", 7, "h:9003", "h:9004"))
    assert LeaderReport.from_json(report.to_json()) == report
    assert (
        LeaderReport.from_json({"replica_id": "x", "role": "standby", "leader": None}).leader
        is None
    )


def test_kinds_are_parsed_from_a_comma_list() -> None:
    assert parse_kinds(None) == (Kind.TOPIC, Kind.PARTITION, Kind.SPU)
    assert parse_kinds("spus, topics,spus") == (Kind.SPU, Kind.TOPIC)
    with pytest.raises(ValueError, match="unknown kind 'brokers'"):
        parse_kinds("topics,brokers")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:9003", ("127.0.0.1", 9003)), ("[::1]:0", ("::1", 0)), ("sc-a:1", ("sc-a", 1))],
)
def test_host_port(text: str, expected: tuple[str, int]) -> None:
    assert split_host_port(text) == expected


@pytest.mark.parametrize("text", ["9003", "host:", ":9003", "host:port", "host:70000"])
def test_bad_host_port(text: str) -> None:
    with pytest.raises(ValueError):
        split_host_port(text)


def test_openapi_describes_exactly_the_routes() -> None:
    doc = openapi_document()
    described = {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert described == {(method, path) for method, path, _ in ROUTES}


def test_openapi_references_resolve() -> None:
    doc = openapi_document()
    schemas = doc["components"]["schemas"]

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    missing = {r for r in refs(doc) if r.removeprefix("#/components/schemas/") not in schemas}
    assert not missing
    assert set(schemas["CreateTopicRequest"]["required"]) == {"name", "spec"}
