"""Answering produce, fetch and replica fetch for one hosted replica.

Produce goes to the leader's queue (``appender.py``); acks=leader is answered once
the group holding it is written, acks=all once the high watermark passes it (or with
``timeout``). A replica that stops leading before it answers says ``not_leader``:
what it wrote may be cut when it follows, and the producer's retry on the new leader
is recognised as a duplicate if the new leader has it. Fetch and replica fetch wait
(long-poll) on the replica's changes up to the request's ``wait_ms``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ha_sc.protocol.data import (
    MAX_DATA_FRAME,
    MAX_HEADER,
    Acks,
    DataError,
    DataResponse,
    ErrorCode,
    FetchRequest,
    FetchResponse,
    FrameBody,
    Isolation,
    ProduceRequest,
    ProduceResponse,
    ReplicaFetchRequest,
    ReplicaFetchResponse,
)
from ha_sc.spu.dataplane.appender import WriteOutcome
from ha_sc.spu.dataplane.leader import PartitionLeadership
from ha_sc.spu.dataplane.replica import Replica
from ha_sc.spu.storage import StorageError

Frame = tuple[DataResponse, FrameBody]

MAX_READ = MAX_DATA_FRAME - MAX_HEADER
"""The most a fetch reads, whatever it asks for: its answer must fit one frame."""


def produce(
    leadership: PartitionLeadership,
    request: ProduceRequest,
    body: bytes,
    not_leader: Callable[[], DataError],
) -> asyncio.Future[Frame]:
    """The answer to ``request``, once it is due."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Frame] = loop.create_future()

    def settle(response: ProduceResponse) -> None:
        if not answer.done():
            answer.set_result((response, b""))

    def committed(outcome: WriteOutcome, waited: asyncio.Future[DataError | None]) -> None:
        error = waited.result()
        if error is not None:
            settle(ProduceResponse(id=request.id, error=error))
        else:
            settle(_accepted(request, outcome))

    def written(future: asyncio.Future[WriteOutcome]) -> None:
        outcome = future.result()
        if isinstance(outcome, DataError):
            settle(ProduceResponse(id=request.id, error=outcome))
        elif not leadership.active:
            settle(ProduceResponse(id=request.id, error=not_leader()))
        elif request.acks is Acks.LEADER or outcome.commit_at is None:
            settle(_accepted(request, outcome))
        else:
            waited = leadership.wait_commit(outcome.commit_at, request.timeout_ms)
            waited.add_done_callback(lambda w: committed(outcome, w))

    leadership.produce.submit(body).add_done_callback(written)
    return answer


def _accepted(request: ProduceRequest, outcome: WriteOutcome) -> ProduceResponse:
    assert not isinstance(outcome, DataError)
    return ProduceResponse(
        id=request.id, base_offset=outcome.base_offset, duplicate=outcome.duplicate
    )


async def fetch(replica: Replica, request: FetchRequest) -> Frame:
    """Batches from ``request.offset`` (committed ones unless asked otherwise), waiting
    up to ``wait_ms`` for some to come."""
    deadline = time.monotonic() + request.wait_ms / 1000
    while True:
        error = _out_of_range(replica, request.offset)
        if error is not None:
            return _fetch_result(replica, request.id, error=error)
        upper = replica.hw if request.isolation is Isolation.COMMITTED else replica.leo
        try:
            data = await replica.read(request.offset, min(request.max_bytes, MAX_READ), upper)
        except (OSError, StorageError) as exc:
            return _fetch_result(replica, request.id, error=_storage(replica, exc))
        remaining = deadline - time.monotonic()
        if data or remaining <= 0 or replica.closed:
            return _fetch_result(replica, request.id, data)
        await replica.changes.wait(remaining)


def _fetch_result(
    replica: Replica, request_id: int, data: bytes = b"", error: DataError | None = None
) -> Frame:
    response = FetchResponse(
        id=request_id, hw=replica.hw, leo=replica.leo, log_start=replica.log_start, error=error
    )
    return response, data


async def replica_fetch(
    leadership: PartitionLeadership,
    request: ReplicaFetchRequest,
    not_leader: Callable[[], DataError],
) -> Frame:
    """A follower's fetch from its LEO: note how far it is, then send what it lacks, or a
    newer HW, or (after ``wait_ms``) nothing."""
    replica = leadership.replica
    if request.follower not in leadership.progress:
        stranger = DataError(
            code=ErrorCode.UNKNOWN_PARTITION,
            message=f"spu {request.follower} is not a replica of {replica.key} here",
        )
        return _replica_result(replica, request.id, error=stranger)
    out_of_range = _out_of_range(replica, request.offset)
    if out_of_range is not None:
        return _replica_result(replica, request.id, error=out_of_range)
    leadership.fetched(request.follower, request.offset)
    deadline = time.monotonic() + request.wait_ms / 1000
    while True:
        if not leadership.active:
            return _replica_result(replica, request.id, error=not_leader())
        data = b""
        if request.offset < replica.leo:
            try:
                max_bytes = min(request.max_bytes, MAX_READ)
                data = await replica.read(request.offset, max_bytes, replica.leo)
            except (OSError, StorageError) as exc:
                return _replica_result(replica, request.id, error=_storage(replica, exc))
        hw_news = replica.hw > leadership.hw_sent.get(request.follower, -1)
        remaining = deadline - time.monotonic()
        if data or hw_news or remaining <= 0:
            leadership.hw_sent[request.follower] = replica.hw
            return _replica_result(replica, request.id, data)
        await replica.changes.wait(remaining)


def _replica_result(
    replica: Replica, request_id: int, data: bytes = b"", error: DataError | None = None
) -> Frame:
    response = ReplicaFetchResponse(
        id=request_id, hw=replica.hw, leo=replica.leo, log_start=replica.log_start, error=error
    )
    return response, data


def _out_of_range(replica: Replica, offset: int) -> DataError | None:
    if replica.log_start <= offset <= replica.leo:
        return None
    return DataError(
        code=ErrorCode.OFFSET_OUT_OF_RANGE,
        message=(
            f"offset {offset} is outside {replica.key}'s log ({replica.log_start}..{replica.leo})"
        ),
    )


def _storage(replica: Replica, exc: Exception) -> DataError:
    return DataError(code=ErrorCode.STORAGE, message=f"{replica.key}: {exc}")
