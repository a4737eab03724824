"""The public API's JSON forms, shared by the server and the client (no I/O here).

An object travels as ``{"name", "spec", "status", "meta": {"revision",
"create_revision", "owner"}}``; a list as ``{"items": [...], "revision": R}``; an
error as ``{"error": "...", "field": "..."}`` (``field`` names the request field
at fault, or is null).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from ha_sc.model.kinds import Kind, kind_info
from ha_sc.model.meta import StoredObject
from ha_sc.model.names import validate_spu_name
from ha_sc.model.spu import CustomSpuSpec
from ha_sc.model.topic import TopicSpec, validate_topic_name

DEFAULT_PORT = 9003
"""Where the public API listens unless told otherwise."""

API_PREFIX = "/api/v1"

WATCH_KINDS = (Kind.TOPIC, Kind.PARTITION, Kind.SPU)
"""What a watch streams when no kinds are named."""

NDJSON = "application/x-ndjson"


class WireError(ValueError):
    """A JSON document that is not of the shape the API uses."""


def list_body(items: Sequence[dict[str, Any]], revision: int) -> bytes:
    """``{"items": [...], "revision": N}`` as JSON bytes, one item per ``json.dumps`` call.

    One call over a 100k-item list holds the GIL for most of a second, starving the
    replica's election thread; per item, other threads get in between.
    """
    parts = ",".join(json.dumps(item, separators=(",", ":")) for item in items)
    return f'{{"items":[{parts}],"revision":{revision}}}'.encode()


def object_json(obj: StoredObject[Any, Any]) -> dict[str, Any]:
    """The JSON form of a cached object."""
    owner = obj.meta.owner
    return {
        "name": obj.key,
        "spec": obj.spec.model_dump(mode="json", exclude_none=True),
        "status": obj.status.model_dump(mode="json"),
        "meta": {
            "revision": obj.meta.revision,
            "create_revision": obj.meta.create_revision,
            "owner": None if owner is None else owner.model_dump(mode="json"),
        },
    }


def object_from_json(kind: Kind, doc: Any) -> StoredObject[Any, Any]:
    """Rebuild an object of ``kind`` from ``object_json``'s form; raises WireError."""
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        raise WireError(f"a {kind.value} object must be a JSON object with a name")
    meta = doc.get("meta") or {}
    if not isinstance(meta, dict):
        raise WireError(f"{kind.value}/{doc['name']}: meta must be a JSON object")
    info = kind_info(kind)
    try:
        return info.object_type.model_validate(
            {
                "meta": {
                    "key": doc["name"],
                    "revision": meta.get("revision", 0),
                    "create_revision": meta.get("create_revision", 0),
                    "owner": meta.get("owner"),
                },
                "spec": doc.get("spec"),
                "status": doc.get("status", {}),
            }
        )
    except ValidationError as exc:
        raise WireError(f"{kind.value}/{doc['name']}: {exc}") from exc


def error_json(message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": message, "field": field}


# requests


def _name_rule(check: Callable[[str], str], error_type: str) -> Callable[[str], str]:
    """A name check as a pydantic validator whose message is the check's own words."""

    def validate(name: str) -> str:
        try:
            return check(name)
        except ValueError as exc:
            raise PydanticCustomError(error_type, "{reason}", {"reason": str(exc)}) from None

    return validate


TopicName = Annotated[str, AfterValidator(_name_rule(validate_topic_name, "topic_name"))]
SpuName = Annotated[str, AfterValidator(_name_rule(validate_spu_name, "spu_name"))]


class CreateTopicRequest(BaseModel):
    """Body of ``POST /api/v1/topics``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: TopicName
    spec: TopicSpec


class RegisterSpuRequest(CustomSpuSpec):
    """Body of ``POST /api/v1/spus``: a custom SPU and the name it is stored under."""

    name: SpuName

    def custom_spec(self) -> CustomSpuSpec:
        return CustomSpuSpec(
            id=self.id,
            public_endpoint=self.public_endpoint,
            private_endpoint=self.private_endpoint,
            rack=self.rack,
        )


def first_error_field(exc: ValidationError) -> str | None:
    """The dotted path of the first field a validation error names."""
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"])
        if path:
            return path
    return None


# leader and watch


@dataclass(frozen=True, slots=True)
class LeaderInfo:
    """The leader as a replica reports it."""

    replica_id: str
    epoch: int
    public: str
    private: str

    def to_json(self) -> dict[str, Any]:
        return {
            "replica_id": self.replica_id,
            "epoch": self.epoch,
            "public": self.public,
            "private": self.private,
        }

    @classmethod
    def from_json(cls, doc: Any) -> LeaderInfo:
        if not isinstance(doc, dict):
            raise WireError("leader must be a JSON object")
        try:
            return cls(
                replica_id=str(doc["replica_id"]),
                epoch=int(doc["epoch"]),
                public=str(doc["public"]),
                private=str(doc["private"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"malformed leader: {doc!r}") from exc


@dataclass(frozen=True, slots=True)
class LeaderReport:
    """``GET /leader``: who leads, and the role of the replica that answered."""

    replica_id: str
    """The replica that answered."""
    role: str
    """``leader`` or ``standby``."""
    leader: LeaderInfo | None

    def to_json(self) -> dict[str, Any]:
        return {
            "replica_id": self.replica_id,
            "role": self.role,
            "leader": None if self.leader is None else self.leader.to_json(),
        }

    @classmethod
    def from_json(cls, doc: Any) -> LeaderReport:
        if not isinstance(doc, dict):
            raise WireError("a leader report must be a JSON object")
        leader = doc.get("leader")
        return cls(
            replica_id=str(doc.get("replica_id", "")),
            role=str(doc.get("role", "")),
            leader=None if leader is None else LeaderInfo.from_json(leader),
        )


@dataclass(frozen=True, slots=True)
class WatchBatch:
    """One line of a watch stream: the changes of one kind, or a heartbeat.

    The first batch of each kind is a full sync (``full_sync``: ``updates`` holds
    every object, replace what you have); later ones are deltas. ``leader_epoch``
    is the epoch of the leader the answering replica knows of (None if none), and
    ``revision`` the KV revision its cache of that kind reflects.
    """

    kind: Kind | None
    """None for a heartbeat line, which carries only the stamps."""
    full_sync: bool
    updates: tuple[StoredObject[Any, Any], ...]
    deletes: tuple[str, ...]
    leader_epoch: int | None
    revision: int

    @property
    def is_heartbeat(self) -> bool:
        return self.kind is None

    def to_json(self) -> dict[str, Any]:
        if self.kind is None:
            return {
                "heartbeat": True,
                "leader_epoch": self.leader_epoch,
                "revision": self.revision,
            }
        return {
            "kind": self.kind.value,
            "full_sync": self.full_sync,
            "updates": [object_json(obj) for obj in self.updates],
            "deletes": list(self.deletes),
            "leader_epoch": self.leader_epoch,
            "revision": self.revision,
        }

    @classmethod
    def from_json(cls, doc: Any) -> WatchBatch:
        if not isinstance(doc, dict):
            raise WireError("a watch line must be a JSON object")
        epoch = doc.get("leader_epoch")
        leader_epoch = None if epoch is None else int(epoch)
        revision = int(doc.get("revision", 0))
        if doc.get("heartbeat"):
            return cls(None, False, (), (), leader_epoch, revision)
        try:
            kind = Kind(doc["kind"])
        except (KeyError, ValueError) as exc:
            raise WireError(f"watch line of unknown kind: {doc.get('kind')!r}") from exc
        return cls(
            kind=kind,
            full_sync=bool(doc.get("full_sync")),
            updates=tuple(object_from_json(kind, obj) for obj in doc.get("updates", [])),
            deletes=tuple(str(key) for key in doc.get("deletes", [])),
            leader_epoch=leader_epoch,
            revision=revision,
        )


def parse_kinds(text: str | None) -> tuple[Kind, ...]:
    """``topics,partitions`` -> the kinds; empty or None -> WATCH_KINDS."""
    if not text:
        return WATCH_KINDS
    kinds: list[Kind] = []
    for part in text.split(","):
        name = part.strip()
        if not name:
            continue
        try:
            kind = Kind(name)
        except ValueError:
            known = ", ".join(k.value for k in Kind)
            raise ValueError(f"unknown kind {name!r}; known kinds: {known}") from None
        if kind not in kinds:
            kinds.append(kind)
    return tuple(kinds) or WATCH_KINDS


def split_host_port(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); raises ValueError."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{text!r} is not of the form HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    number = int(port)
    if not 0 <= number <= 65535:
        raise ValueError(f"{text!r}: port {number} is out of range")
    return host, number
