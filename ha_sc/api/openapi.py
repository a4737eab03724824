"""``/openapi.json``: an OpenAPI 3.1 description of the public API.

Paths are written by hand; the object and request schemas are generated from
the pydantic models, so they follow the code. A test checks that every route
the app serves is described here, and nothing else.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ha_sc.model.kinds import Kind
from ha_sc.model.partition import PartitionSpec, PartitionStatus
from ha_sc.model.spu import SpuSpec, SpuStatus
from ha_sc.model.topic import TopicSpec, TopicStatus
from ha_sc.protocol.api_wire import API_PREFIX, NDJSON, CreateTopicRequest, RegisterSpuRequest

_REF = "#/components/schemas/{model}"

_MODELS: tuple[type[BaseModel], ...] = (
    TopicSpec,
    TopicStatus,
    PartitionSpec,
    PartitionStatus,
    SpuSpec,
    SpuStatus,
    CreateTopicRequest,
    RegisterSpuRequest,
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _object_schema(spec: str, status: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["name", "spec", "status", "meta"],
        "properties": {
            "name": {"type": "string"},
            "spec": _ref(spec),
            "status": _ref(status),
            "meta": _ref("ObjectMeta"),
        },
    }


def _list_schema(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "revision"],
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "revision": {"type": "integer", "description": "KV revision the cache reflects"},
        },
    }


_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}

_STANDBY = {
    "307": {
        "description": "This replica is a standby: repeat the request at `Location`, the "
        "leader's public address (the body names the leader).",
        "headers": {"Location": {"schema": {"type": "string"}}},
        "content": {"application/json": {"schema": _ref("Redirect")}},
    },
    "503": _error(
        "No leader elected yet, leadership changed (retry: `Retry-After` is set), or "
        "the KV store is unavailable"
    ),
}

_READ_UNAVAILABLE = {"503": _error("This replica's cache has not synced yet")}


def _paths() -> dict[str, Any]:
    deleted = _json(_ref("Deleted"), "Deleted")
    return {
        f"{API_PREFIX}/topics": {
            "get": {
                "summary": "List topics (from this replica's cache)",
                "operationId": "listTopics",
                "responses": {"200": _json(_ref("TopicList"), "Topics"), **_READ_UNAVAILABLE},
            },
            "post": {
                "summary": "Create a topic and wait until it is provisioned",
                "description": "Answers once the topic is Provisioned with its partitions "
                "stored. A topic that ends InvalidConfig (409) or InsufficientResources "
                "(503), or is not provisioned in time (504), is removed again.",
                "operationId": "createTopic",
                "parameters": [
                    {
                        "name": "timeout",
                        "in": "query",
                        "required": False,
                        "description": "Seconds to wait for provisioning (server default "
                        "if absent)",
                        "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CreateTopicRequest")}},
                },
                "responses": {
                    "201": _json(_ref("Topic"), "Provisioned"),
                    "400": _error("Invalid name or spec; `field` names the field at fault"),
                    "409": _error("The name exists, or the config is invalid (InvalidConfig)"),
                    **_STANDBY,
                    "504": _error("Not provisioned in time; the message says what is missing"),
                },
            },
        },
        f"{API_PREFIX}/topics/{{name}}": {
            "parameters": [_NAME],
            "get": {
                "summary": "Describe a topic",
                "operationId": "getTopic",
                "responses": {
                    "200": _json(_ref("Topic"), "The topic"),
                    "404": _error("No such topic"),
                    **_READ_UNAVAILABLE,
                },
            },
            "delete": {
                "summary": "Delete a topic and its partitions",
                "operationId": "deleteTopic",
                "responses": {"200": deleted, "404": _error("No such topic"), **_STANDBY},
            },
        },
        f"{API_PREFIX}/partitions": {
            "get": {
                "summary": "List partitions",
                "operationId": "listPartitions",
                "parameters": [
                    {
                        "name": "topic",
                        "in": "query",
                        "required": False,
                        "description": "Only this topic's partitions",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json(_ref("PartitionList"), "Partitions"),
                    **_READ_UNAVAILABLE,
                },
            }
        },
        f"{API_PREFIX}/spus": {
            "get": {
                "summary": "List SPUs",
                "operationId": "listSpus",
                "responses": {"200": _json(_ref("SpuList"), "SPUs"), **_READ_UNAVAILABLE},
            },
            "post": {
                "summary": "Register a custom SPU",
                "operationId": "registerSpu",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("RegisterSpuRequest")}},
                },
                "responses": {
                    "201": _json(_ref("Spu"), "Registered"),
                    "400": _error("Invalid request; `field` names the field at fault"),
                    "409": _error("The name or the SPU id is taken"),
                    **_STANDBY,
                },
            },
        },
        f"{API_PREFIX}/spus/{{name}}": {
            "parameters": [_NAME],
            "delete": {
                "summary": "Unregister a custom SPU",
                "operationId": "unregisterSpu",
                "responses": {
                    "200": deleted,
                    "404": _error("No such SPU"),
                    "409": _error("The SPU is managed by an SPU group"),
                    **_STANDBY,
                },
            },
        },
        f"{API_PREFIX}/watch": {
            "get": {
                "summary": "Stream changes: a full sync per kind, then deltas",
                "operationId": "watch",
                "parameters": [
                    {
                        "name": "kinds",
                        "in": "query",
                        "required": False,
                        "description": "Comma-separated kinds (default topics,partitions,spus)",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "One JSON object per line, until the server stops",
                        "content": {NDJSON: {"schema": _ref("WatchLine")}},
                    },
                    "400": _error("Unknown kind"),
                    **_READ_UNAVAILABLE,
                },
            }
        },
        "/cluster/members": {
            "get": {
                "summary": "The Raft group's members (Raft backend)",
                "operationId": "listMembers",
                "responses": {
                    "200": _json(_MEMBERS, "Raft addresses of the members"),
                    "409": _error("Not a Raft replica set"),
                },
            },
            "post": {
                "summary": "Add a started replica's Raft node to the group",
                "operationId": "addMember",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["raft"],
                                "properties": {"raft": {"type": "string"}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(_MEMBERS, "Added (or a member already)"),
                    "400": _error("Invalid address"),
                    "409": _error("Not a Raft replica set"),
                    "503": _error("Not committed in time (retry)"),
                },
            },
        },
        "/cluster/members/{address}": {
            "delete": {
                "summary": "Remove another replica's Raft node from the group",
                "operationId": "removeMember",
                "parameters": [
                    {
                        "name": "address",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json(_MEMBERS, "Removed (or not a member)"),
                    "400": _error("Invalid address"),
                    "409": _error(
                        "Not a Raft replica set, this replica's own address, or the Raft "
                        "leader (step it down first)"
                    ),
                },
            }
        },
        "/cluster/step-down": {
            "post": {
                "summary": "Stop leading and give up Raft leadership; stay a standby",
                "operationId": "stepDown",
                "responses": {"200": _json({"type": "object"}, "Done")},
            }
        },
        "/leader": {
            "get": {
                "summary": "Who leads, and this replica's role",
                "operationId": "getLeader",
                "responses": {"200": _json(_ref("LeaderReport"), "The leader as known here")},
            }
        },
        "/healthz": {
            "get": {
                "summary": "The process is alive",
                "operationId": "healthz",
                "responses": {"200": _json({"type": "object"}, "Alive")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "The cache has synced once (reads are served)",
                "operationId": "readyz",
                "responses": {
                    "200": _json({"type": "object"}, "Ready"),
                    "503": _error("Not synced yet"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1 document")},
            }
        },
    }


def _hand_written_schemas() -> dict[str, Any]:
    leader = {
        "type": "object",
        "required": ["replica_id", "epoch", "public", "private"],
        "properties": {
            "replica_id": {"type": "string"},
            "epoch": {"type": "integer"},
            "public": {"type": "string"},
            "private": {"type": "string"},
        },
    }
    nullable_leader = {"anyOf": [_ref("Leader"), {"type": "null"}]}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
        },
        "Redirect": {
            "allOf": [
                _ref("Error"),
                {"type": "object", "properties": {"leader": _ref("Leader")}},
            ]
        },
        "ObjectMeta": {
            "type": "object",
            "properties": {
                "revision": {"type": "integer"},
                "create_revision": {"type": "integer"},
                "owner": {
                    "type": ["object", "null"],
                    "properties": {"kind": {"type": "string"}, "key": {"type": "string"}},
                },
            },
        },
        "Topic": _object_schema("TopicSpec", "TopicStatus"),
        "Partition": _object_schema("PartitionSpec", "PartitionStatus"),
        "Spu": _object_schema("SpuSpec", "SpuStatus"),
        "TopicList": _list_schema("Topic"),
        "PartitionList": _list_schema("Partition"),
        "SpuList": _list_schema("Spu"),
        "Deleted": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "deleted": {"type": "boolean"},
                "revision": {"type": "integer"},
            },
        },
        "Leader": leader,
        "LeaderReport": {
            "type": "object",
            "required": ["replica_id", "role", "leader"],
            "properties": {
                "replica_id": {"type": "string", "description": "The replica that answered"},
                "role": {"type": "string", "enum": ["leader", "standby"]},
                "leader": nullable_leader,
                "revision": {
                    "type": "integer",
                    "description": "The newest store revision this replica's cache applied",
                },
            },
        },
        "WatchLine": {
            "type": "object",
            "description": "A batch of one kind's changes, or a heartbeat "
            "(`heartbeat: true`, stamps only)",
            "properties": {
                "kind": {"type": "string", "enum": [k.value for k in Kind]},
                "full_sync": {"type": "boolean"},
                "updates": {"type": "array", "items": {"type": "object"}},
                "deletes": {"type": "array", "items": {"type": "string"}},
                "heartbeat": {"type": "boolean"},
                "leader_epoch": {"type": ["integer", "null"]},
                "revision": {"type": "integer"},
            },
            "required": ["leader_epoch", "revision"],
        },
    }


@cache
def _document() -> dict[str, Any]:
    _, generated = models_json_schema(
        [(model, "validation") for model in _MODELS], ref_template=_REF
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ha-sc public API",
            "version": "1",
            "description": "Served by every SC replica. Reads come from the replica's "
            "cache; writes are made by the leader (a standby answers 307 to it).",
        },
        "paths": _limited(_keyed_writes(_paths())),
        "components": {"schemas": {**generated.get("$defs", {}), **_hand_written_schemas()}},
    }


_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "One value per logical request, the same on every retry of it: a "
    "repeat gets the first final answer (with `Idempotent-Replay: true`) instead of being "
    "carried out again; for a topic create this holds on a new leader after a failover too.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}


def _limited(paths: dict[str, Any]) -> dict[str, Any]:
    """Every operation may meet the listener's limits (``ha_sc.sc.listener_limits``)."""
    for operations in paths.values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue  # the path's own parameters
            operation["responses"].setdefault(
                "429", _error("This client host has too many requests open; retry later")
            )
            if method in ("post", "put", "patch"):
                operation["responses"].setdefault("413", _error("The request body is too large"))
    return paths


def _keyed_writes(paths: dict[str, Any]) -> dict[str, Any]:
    """Every write takes an ``Idempotency-Key`` header (see ``idempotency``)."""
    for operations in paths.values():
        for method, operation in operations.items():
            if method in ("post", "put", "patch", "delete"):
                operation["parameters"] = [*operation.get("parameters", []), _IDEMPOTENCY_KEY]
                operation["responses"].setdefault(
                    "422", _error("The Idempotency-Key was used for a different request")
                )
    return paths


_MEMBERS = {
    "type": "object",
    "properties": {"members": {"type": "array", "items": {"type": "string"}}},
}


def openapi_document() -> dict[str, Any]:
    """The description, as a fresh dict the caller may change."""
    return copy.deepcopy(_document())


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(_document())
