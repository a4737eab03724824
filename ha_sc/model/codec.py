"""The stored value format: the contract between the model and the KV layer.

A value is UTF-8 JSON of
`{"spec": {...}, "status": {...}, "owner": {"kind", "key", "create_revision"}}`.
`status` and `owner` may be absent; an absent status is the kind's default status, so an
operator can create an object by hand with only a spec. The owner's `create_revision`
(its identity) is absent in values written before owners had one: they still load.
"""

import json
from functools import cache
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ha_sc.model.kinds import Kind, kind_info
from ha_sc.model.meta import ObjectMeta, OwnerRef, StoredObject

_SpecT = TypeVar("_SpecT", bound=BaseModel)
_StatusT = TypeVar("_StatusT", bound=BaseModel)


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
        message = error["msg"].removeprefix("Value error, ")  # a validator's own words
        parts.append(f"{path}: {message}" if path else message)
    return "; ".join(parts)


def encode_value(
    spec: BaseModel, status: BaseModel | None = None, owner: OwnerRef | None = None
) -> bytes:
    """Compact JSON with sorted keys and no null fields.

    Built from each part's own sorted JSON (``owner`` < ``spec`` < ``status``, the
    order ``sort_keys`` gives the envelope), the parts taken from ``_FRAGMENTS``."""
    parts = []
    if owner is not None:
        parts.append('"owner":' + _FRAGMENTS.of(owner))
    parts.append('"spec":' + _FRAGMENTS.of(spec))
    if status is not None:
        parts.append('"status":' + _FRAGMENTS.of(status))
    return ("{" + ",".join(parts) + "}").encode()


class _Fragments:
    """Each part's compact, key-sorted JSON, for up to ``size`` parts met lately.

    ``json.dumps(..., sort_keys=True)`` of a part's dump took three quarters of the
    time to encode a new partition (about 45 us of 60 at 100k partitions a fill);
    pydantic's own ``model_dump_json`` is several times quicker but keeps the fields'
    declared order. So that one is the key: equal parts (a topic's partitions share an
    owner, a first status and a few replica lists) are sorted once. The very same
    part object met again (the owner of a topic's partitions, a shared first status)
    is found by its identity, without dumping it at all: the entry holds the object, so
    its id cannot be reused while the entry lives, and models are frozen. Shared
    between threads: a dict's get and set are atomic, and a lost entry only costs a
    miss.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._sorted: dict[tuple[type[BaseModel], str], str] = {}
        self._by_identity: dict[int, tuple[BaseModel, str]] = {}

    def of(self, part: BaseModel) -> str:
        known = self._by_identity.get(id(part))
        if known is not None and known[0] is part:
            return known[1]
        key = (type(part), part.model_dump_json(exclude_none=True))
        text = self._sorted.get(key)
        if text is None:
            doc = part.model_dump(mode="json", exclude_none=True)
            text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            if len(self._sorted) >= self._size:
                self._sorted.clear()
            self._sorted[key] = text
        if len(self._by_identity) >= self._size:
            self._by_identity.clear()
        self._by_identity[id(part)] = (part, text)
        return text


_FRAGMENTS = _Fragments()


def encode_object(obj: StoredObject[Any, Any]) -> bytes:
    """The stored value of an object."""
    return encode_value(obj.spec, obj.status, obj.meta.owner)


def decode_object(
    kind: Kind,
    key: str,
    value: bytes,
    *,
    revision: int,
    create_revision: int,
    seen: "DecodedValues | None" = None,
) -> StoredObject[Any, Any]:
    """Build the object stored at /ha-sc/<kind>/<key>; raises InvalidObject.

    ``seen`` (values of ``kind`` decoded before) spares validating a value again
    when the same bytes come back under another key or revision."""
    info = kind_info(kind)
    try:
        info.validate_key(key)
    except ValueError as exc:
        raise InvalidObject(kind, key, f"key: {exc}") from exc
    if seen is not None and seen.kind is not kind:
        raise ValueError(f"values of {seen.kind} cannot decode {kind}/{key}")
    envelope = None if seen is None else seen.get(value)
    if envelope is None:
        try:
            envelope = _envelope(kind).model_validate_json(value)
        except ValidationError as exc:
            raise InvalidObject(kind, key, _describe(exc)) from exc
        if seen is not None:
            seen.remember(value, envelope)
    # every part is validated by now: assemble without validating again
    meta = assembled(
        ObjectMeta,
        {
            "key": key,
            "revision": revision,
            "create_revision": create_revision,
            "owner": envelope.owner,
        },
    )
    status = envelope.status if envelope.status is not None else info.status_type()
    return assembled(info.object_type, {"meta": meta, "spec": envelope.spec, "status": status})


class DecodedValues:
    """Up to ``size`` valid values of one kind met lately, by their bytes, decoded.

    Decoding is a pure function of the bytes, so a value seen again need not be
    validated again: its spec, status and owner (frozen models) are shared by every
    object that holds it. Values repeat where a controller writes many alike: the
    partitions of a new topic differ only in their replica lists, which take a few
    forms, and carry the same owner and initial status. Invalid values are not kept.
    Emptied when full; one dispatcher's, not shared between threads.
    """

    def __init__(self, kind: Kind, *, size: int = 4096) -> None:
        self.kind = kind
        self.size = size
        self._envelopes: dict[bytes, _Envelope[Any, Any]] = {}
        self.hits = 0
        """Values found here rather than validated again."""

    def __len__(self) -> int:
        return len(self._envelopes)

    def get(self, value: bytes) -> "_Envelope[Any, Any] | None":
        envelope = self._envelopes.get(value)
        if envelope is not None:
            self.hits += 1
        return envelope

    def remember(self, value: bytes, envelope: "_Envelope[Any, Any]") -> None:
        if self.size <= 0:
            return
        if len(self._envelopes) >= self.size:
            # start afresh: dropping the oldest one by one made every drop walk past
            # the slots the earlier drops left empty
            self._envelopes.clear()
        self._envelopes[value] = envelope


_M = TypeVar("_M", bound=BaseModel)
_set = object.__setattr__


def assembled(model: type[_M], fields: dict[str, Any]) -> _M:
    """``model.model_construct(**fields)`` for a model without private attributes or
    extra fields, given every one of its fields, each already validated.

    What ``model_construct`` does for such a model, without its walk over the
    model's fields (defaults, aliases, extras): a third of the time it took to
    decode a partition into the cache. The fields are trusted, so only code that
    has just validated them calls this (``decode_object``); tests/unit/
    test_model_codec.py checks the result is the model ``model_construct`` builds.
    """
    obj = model.__new__(model)
    _set(obj, "__dict__", fields)
    _set(obj, "__pydantic_fields_set__", set(fields))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


class _Envelope(BaseModel, Generic[_SpecT, _StatusT]):
    """The stored value of one kind, validated in one pass from JSON bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spec: _SpecT
    status: _StatusT | None = None
    owner: OwnerRef | None = None


@cache
def _envelope(kind: Kind) -> type[_Envelope[Any, Any]]:
    info = kind_info(kind)
    return _Envelope[info.spec_type, info.status_type]  # type: ignore[name-defined]


def _describe(exc: ValidationError) -> str:
    """Like format_validation_error, in the words the stored format calls for."""
    parts = []
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"])
        if error["type"] == "json_invalid":
            parts.append(f"value is not valid JSON: {error['msg']}")
        elif error["type"] == "model_type" and not path:
            parts.append("value must be a JSON object")
        elif error["type"] == "extra_forbidden" and "." not in path:
            parts.append(f"{path}: Extra inputs are not permitted")
        else:
            parts.append(f"{path}: {error['msg']}" if path else error["msg"])
    return "; ".join(parts)
