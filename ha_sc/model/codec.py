"""The stored value format: the contract between the model and the KV layer.

A value is UTF-8 JSON of `{"spec": {...}, "status": {...}, "owner": {"kind", "key"}}`.
`status` and `owner` may be absent; an absent status is the kind's default status, so an
operator can create an object by hand with only a spec.
"""

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ha_sc.model.kinds import Kind, kind_info
from ha_sc.model.meta import ObjectMeta, OwnerRef, StoredObject

_FIELDS = ("spec", "status", "owner")

_ModelT = TypeVar("_ModelT", bound=BaseModel)


class InvalidObject(ValueError):
    """A stored value or key that does not make a valid object of its kind."""

    def __init__(self, kind: Kind, key: str, reason: str) -> None:
        super().__init__(f"{kind}/{key}: {reason}")
        self.kind = kind
        self.key = key
        self.reason = reason


def format_validation_error(exc: ValidationError, *, prefix: str = "") -> str:
    """Render errors as `field.path: message; ...`, paths under `prefix` if given."""
    parts = []
    for error in exc.errors(include_url=False):
        loc = [prefix] if prefix else []
        path = ".".join(loc + [str(part) for part in error["loc"]])
        parts.append(f"{path}: {error['msg']}" if path else error["msg"])
    return "; ".join(parts)


def encode_value(
    spec: BaseModel, status: BaseModel | None = None, owner: OwnerRef | None = None
) -> bytes:
    """Compact JSON with sorted keys and no null fields."""
    doc: dict[str, Any] = {"spec": spec.model_dump(mode="json", exclude_none=True)}
    if status is not None:
        doc["status"] = status.model_dump(mode="json", exclude_none=True)
    if owner is not None:
        doc["owner"] = owner.model_dump(mode="json")
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def encode_object(obj: StoredObject[Any, Any]) -> bytes:
    """The stored value of an object."""
    return encode_value(obj.spec, obj.status, obj.meta.owner)


def decode_object(
    kind: Kind, key: str, value: bytes, *, revision: int, create_revision: int
) -> StoredObject[Any, Any]:
    """Build the object stored at /ha-sc/<kind>/<key>; raises InvalidObject."""
    info = kind_info(kind)
    try:
        info.validate_key(key)
    except ValueError as exc:
        raise InvalidObject(kind, key, f"key: {exc}") from exc
    doc = _load(kind, key, value)

    problems: list[str] = []
    spec = _validate(info.spec_type, doc["spec"], "spec", problems)
    status = _validate(info.status_type, doc.get("status"), "status", problems)
    owner = _validate(OwnerRef, doc.get("owner"), "owner", problems)
    if problems:
        raise InvalidObject(kind, key, "; ".join(problems))
    meta = ObjectMeta(key=key, revision=revision, create_revision=create_revision, owner=owner)
    return info.object_type(meta=meta, spec=spec, status=status or info.status_type())


def _validate(model: type[_ModelT], raw: Any, field: str, problems: list[str]) -> _ModelT | None:
    """Validate one part of the value; absent or null gives None."""
    if raw is None:
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems.append(format_validation_error(exc, prefix=field))
        return None


def _load(kind: Kind, key: str, value: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(value.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidObject(kind, key, f"value is not UTF-8: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidObject(kind, key, f"value is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidObject(kind, key, f"value must be a JSON object, not {type(doc).__name__}")
    unknown = sorted(set(doc) - set(_FIELDS))
    if unknown:
        raise InvalidObject(
            kind, key, "; ".join(f"{field}: Extra inputs are not permitted" for field in unknown)
        )
    if doc.get("spec") is None:
        raise InvalidObject(kind, key, "spec: Field required")
    return doc
