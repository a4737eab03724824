"""The SPU data-plane wire: produce, fetch and replica fetch, sans-IO.

Used on the SPU's public port (clients: ``produce``, ``fetch``) and on its private
port (follower SPUs: ``replica_hello`` and ``replica_proof`` to prove their id, see
protocol/fetch_proof.py, then ``replica_session_fetch``, or ``replica_fetch`` of one
partition). Every frame is::

    u32 total length (big-endian) of what follows
    u32 header length
    header: UTF-8 JSON object, its ``type`` field names it
    body:   the rest; zero or more record batches back to back (protocol/record_batch.py),
            carried as opaque bytes, never parsed by the framing

Requests carry an ``id`` the client chooses; the response echoes it, so a client may
send several requests before reading the answers (pipelining). On the public port
responses come back in request order on one connection; on the private port each
comes back as soon as it is ready (a follower's one connection carries the fetches of
every partition it follows, and a fetch waiting for records must not hold up the
others), so a follower matches them by ``id``. An error is a response with ``error``
set; a frame that cannot be decoded closes that connection only.
"""

from __future__ import annotations

import enum
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ha_sc.model.ints import SpuId

MAX_DATA_FRAME = 64 * 1024 * 1024
"""The largest frame (header and body), in bytes: 64 MiB."""
MAX_HEADER = 64 * 1024
"""The largest JSON header, in bytes."""

_U32 = struct.Struct(">I")
_PREFIX = struct.Struct(">II")

Offset = Annotated[int, Field(ge=0)]


class DataFrameError(Exception):
    """Bytes that are not a valid data-plane frame; that connection cannot go on."""


class ErrorCode(enum.StrEnum):
    NOT_LEADER = "not_leader"
    """This SPU does not lead the partition; ``leader``/``leader_address`` say who does,
    when known."""
    UNKNOWN_PARTITION = "unknown_partition"
    """This SPU hosts no replica of the partition."""
    MALFORMED = "malformed"
    """The request or a batch in it is not well formed; nothing of it was written."""
    OFFSET_OUT_OF_RANGE = "offset_out_of_range"
    """The fetch offset is below the log start or above the log end."""
    TIMEOUT = "timeout"
    """acks=all: the batch was written on the leader, but the in-sync replicas did not all
    have it before the timeout. The producer retries (idempotence drops the duplicate)."""
    STORAGE = "storage"
    """The replica's log failed on disk."""
    UNAUTHORIZED = "unauthorized"
    """Private port: the connection has not proven the follower id the request names (or
    a proof failed). The leader closes the connection after this answer."""
    UNKNOWN_SESSION = "unknown_session"
    """Private port: the fetch session named is not this connection's (the leader lost
    it); the follower opens a new one with its full set of partitions."""
    OUT_OF_SEQUENCE = "out_of_sequence"
    """An idempotent batch does not start right after its producer's last sequence on
    this replica: earlier records of that producer are missing here (with acks=leader, a
    leader change can lose acknowledged records). Nothing of the request was written. The
    producer gives up that producer id on the partition and sends the batch again under
    a fresh one from sequence 0."""


class DataError(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    code: ErrorCode
    message: str
    leader: SpuId | None = None
    leader_address: str | None = None


class Acks(enum.StrEnum):
    LEADER = "leader"
    """Acknowledged once written to the leader's log."""
    ALL = "all"
    """Acknowledged once committed: the high watermark passed it (every in-sync replica
    has it)."""


class Isolation(enum.StrEnum):
    COMMITTED = "committed"
    """Only records below the high watermark."""
    UNCOMMITTED = "uncommitted"
    """Everything up to the log end."""


class _Header(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int = Field(ge=0)


# client -> SPU (public port)


class ProduceRequest(_Header):
    """Append the body's batches (one or more) to a partition on its leader."""

    type: Literal["produce"] = "produce"
    topic: str
    partition: int = Field(ge=0)
    acks: Acks = Acks.LEADER
    timeout_ms: int = Field(default=5000, ge=0)


class FetchRequest(_Header):
    """Read batches from ``offset``; waits up to ``wait_ms`` for new ones if none are there."""

    type: Literal["fetch"] = "fetch"
    topic: str
    partition: int = Field(ge=0)
    offset: Offset
    max_bytes: int = Field(default=1024 * 1024, gt=0)
    isolation: Isolation = Isolation.COMMITTED
    wait_ms: int = Field(default=0, ge=0)


# follower SPU -> leader SPU (private port)


class ReplicaFetchRequest(_Header):
    """A follower pulls from its LEO; the offset tells the leader how far it has come."""

    type: Literal["replica_fetch"] = "replica_fetch"
    topic: str
    partition: int = Field(ge=0)
    follower: SpuId
    offset: Offset
    """The follower's log end offset."""
    max_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    wait_ms: int = Field(default=0, ge=0)


class ReplicaSessionFetch(_Header):
    """A follower's fetch of every partition it follows from this leader, in one fetch
    session (protocol/fetch_session.py). Body: the session's changes (partitions to
    fetch, with their offsets, and partitions to forget) as ``encode_changes`` writes
    them; the first fetch of a session (``session`` 0) lists every partition."""

    type: Literal["replica_session_fetch"] = "replica_session_fetch"
    follower: SpuId
    session: int = Field(default=0, ge=0)
    """The session this fetch continues (the id the leader gave); 0 opens a new one."""
    max_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    """Bytes of records in the answer at most, over all its partitions."""
    partition_max_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    """Bytes of records of one partition in the answer at most."""
    wait_ms: int = Field(default=0, ge=0)
    """How long the leader may wait when no partition has anything new."""


class ReplicaHello(_Header):
    """A follower's first request on a new private-port connection: it will prove that it
    is ``follower`` (protocol/fetch_proof.py). Answered by a ``replica_challenge``."""

    type: Literal["replica_hello"] = "replica_hello"
    follower: SpuId


class ReplicaProof(_Header):
    """The follower's answer to the challenge: the connection carries its fetches from then
    on. Answered by a ``replica_proven`` (an error one closes the connection)."""

    type: Literal["replica_proof"] = "replica_proof"
    follower: SpuId
    proof: str = Field(pattern=r"^[0-9a-f]{64}$", repr=False)
    """HMAC-SHA256 of the challenge's nonce and the two ids, as hex."""


# SPU -> client / follower


class ProduceResponse(_Header):
    type: Literal["produce_result"] = "produce_result"
    base_offset: int | None = None
    """Offset of the first record of the first batch; for a duplicate (a retried batch the
    leader already has) the offset it was first written at."""
    duplicate: bool = False
    error: DataError | None = None


class FetchResponse(_Header):
    """Body: the batches read (possibly none)."""

    type: Literal["fetch_result"] = "fetch_result"
    hw: int = 0
    leo: int = 0
    log_start: int = 0
    error: DataError | None = None


class ReplicaFetchResponse(_Header):
    """Body: the batches from the follower's offset on."""

    type: Literal["replica_fetch_result"] = "replica_fetch_result"
    hw: int = 0
    leo: int = 0
    log_start: int = 0
    error: DataError | None = None


class ReplicaSessionResult(_Header):
    """Body: what ``encode_answers`` writes (protocol/fetch_session.py): the partitions
    with records, a newer HW or an error, and their records. An ``error`` here is the
    whole fetch's (the session unknown, an unproven follower)."""

    type: Literal["replica_session_result"] = "replica_session_result"
    session: int = 0
    """The session's id, to name in the follower's next fetch."""
    error: DataError | None = None


class ReplicaChallenge(_Header):
    """The leader's answer to a ``replica_hello``: the nonce to prove the follower id with."""

    type: Literal["replica_challenge"] = "replica_challenge"
    nonce: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    """32 random bytes as hex, fresh for this connection."""
    error: DataError | None = None


class ReplicaProven(_Header):
    """The leader's answer to a ``replica_proof``: no error, the connection is the
    follower's; an ``unauthorized`` error, it is closed."""

    type: Literal["replica_proven"] = "replica_proven"
    error: DataError | None = None


DataRequest: TypeAlias = Annotated[
    ProduceRequest
    | FetchRequest
    | ReplicaFetchRequest
    | ReplicaSessionFetch
    | ReplicaHello
    | ReplicaProof,
    Field(discriminator="type"),
]
DataResponse: TypeAlias = Annotated[
    ProduceResponse
    | FetchResponse
    | ReplicaFetchResponse
    | ReplicaSessionResult
    | ReplicaChallenge
    | ReplicaProven,
    Field(discriminator="type"),
]
DataHeader: TypeAlias = (
    ProduceRequest
    | FetchRequest
    | ReplicaFetchRequest
    | ReplicaSessionFetch
    | ReplicaHello
    | ReplicaProof
    | ProduceResponse
    | FetchResponse
    | ReplicaFetchResponse
    | ReplicaSessionResult
    | ReplicaChallenge
    | ReplicaProven
)

_REQUESTS: TypeAdapter[Any] = TypeAdapter(DataRequest)
_RESPONSES: TypeAdapter[Any] = TypeAdapter(DataResponse)


FrameBody = bytes | bytearray | memoryview | list[bytes]
"""A frame's body: one buffer, or pieces sent back to back (never joined)."""


def encode_frame(header: DataHeader, body: FrameBody = b"") -> list[bytes | bytearray | memoryview]:
    """The pieces of one frame, to write in order, each with its own ``write`` (a
    ``writelines`` joins them: a copy of the body): no body copy."""
    head = header.model_dump_json(exclude_none=True).encode()
    if len(head) > MAX_HEADER:
        raise DataFrameError(f"{header.type} header of {len(head)} bytes exceeds {MAX_HEADER}")
    pieces: list[bytes | bytearray | memoryview] = (
        [piece for piece in body if piece] if isinstance(body, list) else [body] if body else []
    )
    total = _U32.size + len(head) + sum(len(piece) for piece in pieces)
    if total > MAX_DATA_FRAME:
        raise DataFrameError(
            f"{header.type} frame of {total} bytes exceeds the {MAX_DATA_FRAME}-byte limit"
        )
    return [_PREFIX.pack(total, len(head)) + head, *pieces]


SMALL_PIECE = 64 * 1024
"""Frame pieces smaller than this are joined before they are written (one send for a
header and the small pieces after it); larger ones are written as they are."""


def write_frame(
    write: Callable[[bytes | bytearray | memoryview], object],
    pieces: list[bytes | bytearray | memoryview],
) -> None:
    """Hand a frame's pieces (``encode_frame``) to a transport's ``write``: small
    neighbours joined, a large piece alone (``writelines`` would join them all: a copy
    of the records) and as a memoryview when it is ``bytes``, so what the socket does
    not take at once is copied once (into the transport's buffer), not sliced first."""
    small: list[bytes | bytearray | memoryview] = []
    for piece in pieces:
        if len(piece) < SMALL_PIECE:
            small.append(piece)
            continue
        if small:
            write(b"".join(small))
            small = []
        write(memoryview(piece) if isinstance(piece, bytes) else piece)
    if small:
        write(small[0] if len(small) == 1 else b"".join(small))


LARGE_BODY = 1 << 20
"""A frame whose body still has this many bytes to come is gathered as the pieces
received and joined once, rather than grown in the buffer and copied out of it."""


@dataclass(slots=True)
class _LargeFrame:
    """A frame being received whose header is read and whose body is large."""

    header: bytes
    body_at: int
    """Bytes before the body (length prefix and header)."""
    need: int
    """The body's length."""
    parts: list[bytes | memoryview]
    have: int
    """Bytes of the body received."""


class DataFrameDecoder:
    """Turns a byte stream into (header, body) pairs of one direction.

    ``feed`` takes bytes as they arrive and returns the frames they complete. A frame
    whose header is not a valid message comes back as a MalformedHeader (the stream goes
    on); broken framing (impossible lengths) raises DataFrameError, and the decoder
    then refuses more. A large body (``LARGE_BODY``) is kept as the pieces received and
    joined once it is whole: one copy of the records instead of two.
    """

    def __init__(self, adapter: TypeAdapter[Any], *, sender: str) -> None:
        self._adapter = adapter
        self._sender = sender
        self._buffer = bytearray()
        self._large: _LargeFrame | None = None
        self._failed: DataFrameError | None = None

    def feed(self, data: bytes) -> list[tuple[Any, bytes]]:
        self.push(data)
        frames: list[tuple[Any, bytes]] = []
        while (frame := self.pop()) is not None:
            frames.append(frame)
        return frames

    def push(self, data: bytes) -> None:
        """Buffer ``data`` without decoding it (``pop`` decodes one frame at a time)."""
        if self._failed is not None:
            raise DataFrameError(f"stream already broken: {self._failed}")
        large = self._large
        if large is None:
            self._buffer += data
        else:
            large.parts.append(data if isinstance(data, bytes) else bytes(data))
            large.have += len(data)

    def pop(self) -> tuple[Any, bytes] | None:
        """The next whole frame buffered, or None until more bytes come."""
        if self._failed is not None:
            raise DataFrameError(f"stream already broken: {self._failed}")
        try:
            return self._next()
        except DataFrameError as exc:
            self._failed = exc
            raise

    @property
    def buffered(self) -> int:
        """Bytes received and not yet decoded (a partial frame, or frames not popped)."""
        large = self._large
        return len(self._buffer) + (0 if large is None else large.body_at + large.have)

    def _next(self) -> tuple[Any, bytes] | None:
        if self._large is not None:
            return self._large_done(self._large)
        if len(self._buffer) < _PREFIX.size:
            return None
        total, head_len = _PREFIX.unpack_from(self._buffer)
        if total > MAX_DATA_FRAME:
            raise DataFrameError(f"frame of {total} bytes exceeds the {MAX_DATA_FRAME}-byte limit")
        if head_len > MAX_HEADER or head_len + _U32.size > total:
            raise DataFrameError(f"frame header length {head_len} is not valid")
        end = _U32.size + total
        buffered = len(self._buffer)
        if buffered < end:
            body_at = _PREFIX.size + head_len
            if buffered >= body_at and end - buffered >= LARGE_BODY:
                self._gather(body_at, end - body_at)
            return None
        view = memoryview(self._buffer)
        head = bytes(view[_PREFIX.size : _PREFIX.size + head_len])
        body = bytes(view[_PREFIX.size + head_len : end])
        view.release()
        del self._buffer[:end]
        return decode_header(head, self._adapter, self._sender), body

    def _gather(self, body_at: int, need: int) -> None:
        """The rest of the frame is large: keep its pieces as they come."""
        view = memoryview(self._buffer)
        head = bytes(view[_PREFIX.size : body_at])
        first = bytes(view[body_at:])
        view.release()
        self._buffer.clear()
        self._large = _LargeFrame(head, body_at, need, [first], len(first))

    def _large_done(self, large: _LargeFrame) -> tuple[Any, bytes] | None:
        if large.have < large.need:
            return None
        self._large = None
        parts = large.parts
        extra = large.have - large.need
        if extra:  # the last piece also starts the next frame
            last = memoryview(parts[-1])
            parts[-1] = last[: len(last) - extra]
            self._buffer += last[len(last) - extra :]
        body = b"".join(parts)
        return decode_header(large.header, self._adapter, self._sender), body


@dataclass(frozen=True)
class MalformedHeader:
    """A whole frame whose header is not a valid message. The stream's framing is intact,
    so the receiver answers with a ``malformed`` error (echoing ``id`` when it could be
    read) and goes on with the next frame."""

    id: int | None
    reason: str
    type: str | None = None
    """The request's ``type`` when it could be read, so the answer can be of its kind."""


def decode_header(head: bytes, adapter: TypeAdapter[Any], sender: str) -> Any:
    """The header's message, or a MalformedHeader saying what is wrong with it."""
    try:
        return adapter.validate_json(head)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'header'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        doc = _document(head)
        return MalformedHeader(_id_of(doc), f"invalid {sender} frame: {details}", _type_of(doc))


def _document(head: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(head)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _id_of(doc: dict[str, Any] | None) -> int | None:
    value = doc.get("id") if doc is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _type_of(doc: dict[str, Any] | None) -> str | None:
    value = doc.get("type") if doc is not None else None
    return value if isinstance(value, str) else None


def request_decoder() -> DataFrameDecoder:
    """Decodes what clients and followers send: the SPU's side."""
    return DataFrameDecoder(_REQUESTS, sender="client")


def response_decoder() -> DataFrameDecoder:
    """Decodes what an SPU answers: the client's (or follower's) side."""
    return DataFrameDecoder(_RESPONSES, sender="spu")
