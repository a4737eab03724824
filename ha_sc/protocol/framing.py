"""Frames on the wire: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.

Sans-IO: ``encode_message`` makes the bytes to send and a ``MessageDecoder`` is
fed whatever bytes arrive and hands back the complete messages. Neither touches
a socket.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel, TypeAdapter, ValidationError

from ha_sc.protocol.messages import (
    Delta,
    FullSync,
    Message,
    ReplicaReport,
    ReplicaSpec,
    ScMessage,
    SpuMessage,
)

MAX_FRAME_SIZE = 16 * 1024 * 1024
"""The largest payload a frame may carry, in bytes (16 MiB)."""

_HEADER = struct.Struct(">I")

M = TypeVar("M")


class ProtocolError(Exception):
    """Bytes that do not make a valid message; the connection cannot go on."""


LARGE_PAYLOAD = 256 * 1024
"""Frames above this many bytes are checked for a full sync (or a delta) to decode in
chunks."""
SPEC_CHUNK = 256
"""Replica specs serialised per call when a full sync (or a delta) is encoded."""
SPEC_LISTS = {"full_sync": "replicas", "delta": "replicas_changed"}
"""The field of each message type that may carry many replica specs (a resync after a
topic's storage settings changed carries every replica of it)."""
_REPLICA_SPECS: TypeAdapter[list[ReplicaSpec]] = TypeAdapter(list[ReplicaSpec])
_REPLICA_REPORTS: TypeAdapter[list[ReplicaReport]] = TypeAdapter(list[ReplicaReport])
LARGE_LISTS: dict[str, tuple[str, TypeAdapter[Any]]] = {
    "full_sync": ("replicas", _REPLICA_SPECS),
    "delta": ("replicas_changed", _REPLICA_SPECS),
    "status_report": ("replicas", _REPLICA_REPORTS),
}
"""The field of each message type that may carry a long list, decoded a chunk per call:
replica specs to an SPU, and an SPU's full status report to the leader (66k replica
reports at 100k partitions: one call validating them held the leader's GIL, its lease
renewals' included, for as long)."""


def encode_message(message: Message, *, max_frame: int = MAX_FRAME_SIZE) -> bytes:
    """The frame that carries ``message``."""
    if isinstance(message, FullSync) and len(message.replicas) > SPEC_CHUNK:
        payload = _chunked_payload(message, message.replicas)
    elif isinstance(message, Delta) and len(message.replicas_changed) > SPEC_CHUNK:
        payload = _chunked_payload(message, message.replicas_changed)
    else:
        payload = message.model_dump_json().encode()
    return frame(message.type, payload, max_frame=max_frame)


def frame(kind: str, payload: bytes, *, max_frame: int = MAX_FRAME_SIZE) -> bytes:
    """The frame that carries ``payload``, the JSON of a ``kind`` message encoded by its
    sender (``encode_message`` does it for any message; an SPU encodes a large status
    report in slices, ``ha_sc/spu/replica_status.py``)."""
    if len(payload) > max_frame:
        raise ProtocolError(
            f"{kind} message of {len(payload)} bytes exceeds the {max_frame}-byte frame limit"
        )
    return _HEADER.pack(len(payload)) + payload


def _chunked_payload(message: FullSync | Delta, specs: list[ReplicaSpec]) -> bytes:
    """A large full sync's (or delta's) JSON, serialised a chunk of ``specs`` per call.

    Serialisation holds the GIL for the whole of one call: one call over 40k replica
    specs holds it for about half a second, during which the replica's election
    thread cannot renew its lease. Chunks let other threads in between. Storage
    settings left unset are left out (they read back as unset), which makes the
    message smaller and quicker to decode.
    """
    field = SPEC_LISTS[message.type]
    head = message.model_dump_json(exclude={field}).encode()
    chunks = [
        _REPLICA_SPECS.dump_json(specs[i : i + SPEC_CHUNK], exclude_none=True)[1:-1]
        for i in range(0, len(specs), SPEC_CHUNK)
    ]
    opening = f',"{field}":['.encode()
    return b"".join((head[:-1], opening, b",".join(chunks), b"]}"))


class MessageDecoder(Generic[M]):
    """Turns a byte stream into messages of one direction.

    ``feed`` takes the bytes as they arrive, in pieces of any size, and returns
    the messages they complete. A malformed frame raises ProtocolError naming
    what was wrong; the decoder then refuses further input, since the stream has
    lost its framing.
    """

    def __init__(
        self, messages: TypeAdapter[M], *, sender: str, max_frame: int = MAX_FRAME_SIZE
    ) -> None:
        self._adapter = messages
        self._sender = sender
        self._max_frame = max_frame
        self._buffer = bytearray()
        self._failed: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet make a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[M]:
        """The messages completed by ``data``, in order."""
        if self._failed is not None:
            raise ProtocolError(f"stream already broken: {self._failed}")
        self._buffer += data
        messages: list[M] = []
        try:
            while (payload := self._next_payload()) is not None:
                messages.append(self._decode(payload))
        except ProtocolError as exc:
            self._failed = exc
            raise
        return messages

    def _next_payload(self) -> bytes | None:
        """Take the next whole frame's payload out of the buffer, if one is there."""
        if len(self._buffer) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self._buffer)
        if size > self._max_frame:
            raise ProtocolError(f"frame of {size} bytes exceeds the {self._max_frame}-byte limit")
        end = _HEADER.size + size
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[_HEADER.size : end])
        del self._buffer[:end]
        return payload

    def _decode(self, payload: bytes) -> M:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"frame is not valid UTF-8: {exc}") from None
        try:
            if len(payload) > LARGE_PAYLOAD:
                large = self._decode_large(text)
                if large is not None:
                    return large
            return self._adapter.validate_json(text)
        except ValidationError as exc:
            raise ProtocolError(self._describe(exc)) from None

    def _decode_large(self, text: str) -> M | None:
        """A large full sync, delta or status report, its list (``LARGE_LISTS``)
        validated a chunk per call (see ``_chunked_payload``: one call would hold the
        GIL for the whole list, and the SPU's data plane or the leader's renewals with
        it). None for anything else: decoded the plain way."""
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            return None
        if not isinstance(doc, dict):
            return None
        kind = doc.get("type")
        listed = LARGE_LISTS.get(kind) if isinstance(kind, str) else None
        if listed is None:
            return None
        field, items = listed
        replicas = doc.get(field)
        if not isinstance(replicas, list):
            return None
        message = self._adapter.validate_python({**doc, field: []})
        if getattr(message, "type", None) != kind:
            return message
        specs: list[Any] = []
        for i in range(0, len(replicas), SPEC_CHUNK):
            try:
                specs += items.validate_python(replicas[i : i + SPEC_CHUNK])
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                index, *path = first["loc"]
                where = ".".join(str(p) for p in [field, i + int(index), *path])
                raise ProtocolError(f"invalid {kind} message: {where}: {first['msg']}") from None
        return cast(M, cast(BaseModel, message).model_copy(update={field: specs}))

    def _describe(self, exc: ValidationError) -> str:
        parts = []
        for error in exc.errors(include_url=False):
            kind = error["type"]
            ctx: dict[str, Any] = error.get("ctx") or {}
            if kind == "json_invalid":
                parts.append(f"frame is not valid JSON: {ctx.get('error', error['msg'])}")
            elif kind in ("dict_type", "model_attributes_type") and not error["loc"]:
                parts.append("frame is not a JSON object")
            elif kind == "union_tag_not_found":
                parts.append("message has no 'type' field")
            elif kind == "union_tag_invalid":
                parts.append(
                    f"unknown message type {ctx.get('tag')!r} from the {self._sender} "
                    f"(expected one of {ctx.get('expected_tags')})"
                )
            else:
                message_type, *path = (str(part) for part in error["loc"])
                where = ".".join(path)
                detail = f"{where}: {error['msg']}" if where else error["msg"]
                parts.append(f"invalid {message_type} message: {detail}")
        return "; ".join(parts)


_SPU_MESSAGES: TypeAdapter[SpuMessage] = TypeAdapter(SpuMessage)
_SC_MESSAGES: TypeAdapter[ScMessage] = TypeAdapter(ScMessage)


def spu_message_decoder(*, max_frame: int = MAX_FRAME_SIZE) -> MessageDecoder[SpuMessage]:
    """Decodes what an SPU sends: the SC's side of a connection."""
    return MessageDecoder(_SPU_MESSAGES, sender="spu", max_frame=max_frame)


def sc_message_decoder(*, max_frame: int = MAX_FRAME_SIZE) -> MessageDecoder[ScMessage]:
    """Decodes what the SC sends: the SPU's side of a connection."""
    return MessageDecoder(_SC_MESSAGES, sender="sc", max_frame=max_frame)
