"""Which replica answers a request, and what an SPU answers when none can.

The public port takes ``produce`` (the partition's leader only; others answer
``not_leader`` naming the leader and its public address) and ``fetch`` (any replica
of the partition, up to its own HW or LEO; one whose log is still being opened answers
``unknown_partition``, so no offset is judged against an LEO not known yet). The private
port takes ``replica_fetch`` (the leader only; ``replica_session_fetch`` is served by
the connection's fetch session, ``leader_session.py``). A partition the SPU does not hold is
``unknown_partition``; a request on the wrong port, or whose header is not valid, is
``malformed``; the connection goes on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ha_sc.protocol.data import (
    DataError,
    ErrorCode,
    FetchRequest,
    FetchResponse,
    MalformedHeader,
    ProduceRequest,
    ProduceResponse,
    ReplicaChallenge,
    ReplicaFetchRequest,
    ReplicaFetchResponse,
    ReplicaProven,
    ReplicaSessionResult,
)
from ha_sc.spu.dataplane import serving
from ha_sc.spu.dataplane.admission import RequestCaps, capped
from ha_sc.spu.dataplane.registry import ReplicaRegistry
from ha_sc.spu.dataplane.serving import Frame
from ha_sc.telemetry.metrics_spu import DataTraffic
from ha_sc.telemetry.tracing_produce import PRODUCE, end_produce

_RESULT_TYPES = {
    "produce": ProduceResponse,
    "fetch": FetchResponse,
    "replica_fetch": ReplicaFetchResponse,
    "replica_session_fetch": ReplicaSessionResult,
    "replica_hello": ReplicaChallenge,
    "replica_proof": ReplicaProven,
}


class Dispatcher:
    """Turns each decoded request frame into the future of its answer."""

    def __init__(
        self,
        registry: ReplicaRegistry,
        traffic: DataTraffic | None = None,
        caps: RequestCaps | None = None,
    ) -> None:
        self._registry = registry
        self._caps = caps
        self.traffic = traffic if traffic is not None else DataTraffic()
        """Produce and fetch totals, read by the SPU's metrics."""

    def public(self, header: Any, body: bytes) -> asyncio.Future[Frame]:
        if isinstance(header, ProduceRequest):
            return self._produce(header, body)
        if isinstance(header, FetchRequest):
            return self._fetch(header if self._caps is None else capped(header, self._caps))
        return self._refuse(header, "the public port takes produce and fetch")

    def private(self, header: Any, body: bytes) -> asyncio.Future[Frame]:
        if isinstance(header, ReplicaFetchRequest):
            request = header if self._caps is None else capped(header, self._caps)
            return self._replica_fetch(request)
        return self._refuse(
            header, "the private port takes replica_session_fetch and replica_fetch"
        )

    def _produce(self, request: ProduceRequest, body: bytes) -> asyncio.Future[Frame]:
        self.traffic.produce_requests += 1
        self.traffic.produce_bytes += len(body)
        key = f"{request.topic}-{request.partition}"
        hosted = self._registry.get(key)
        if hosted is None:
            return answered(ProduceResponse(id=request.id, error=self._registry.not_leader(key)))
        leadership = hosted.leadership
        if leadership is None:
            return answered(ProduceResponse(id=request.id, error=self._registry.not_leader(key)))
        span = PRODUCE.start(key, request.id, len(body))
        answer = serving.produce(leadership, request, body, lambda: self._registry.not_leader(key))
        if span is not None:
            answer.add_done_callback(
                lambda done: end_produce(span, None if done.cancelled() else done.result()[0])
            )
        return answer

    def _fetch(self, request: FetchRequest) -> asyncio.Future[Frame]:
        key = f"{request.topic}-{request.partition}"
        hosted = self._registry.get(key)
        if hosted is None:
            return answered(FetchResponse(id=request.id, error=self._registry.not_leader(key)))
        if not hosted.loaded:
            loading = DataError(
                code=ErrorCode.UNKNOWN_PARTITION, message=f"{key} is being opened; try again"
            )
            return answered(FetchResponse(id=request.id, error=loading))
        fetching = asyncio.create_task(
            serving.fetch(hosted.replica, request), name=f"fetch {key} id {request.id}"
        )
        fetching.add_done_callback(self._fetched)
        return fetching

    def _fetched(self, fetching: asyncio.Future[Frame]) -> None:
        if fetching.cancelled() or fetching.exception() is not None:
            return
        self.traffic.fetch_requests += 1
        self.traffic.fetch_bytes += len(fetching.result()[1])

    def _replica_fetch(self, request: ReplicaFetchRequest) -> asyncio.Future[Frame]:
        key = f"{request.topic}-{request.partition}"
        hosted = self._registry.get(key)
        leadership = hosted.leadership if hosted is not None else None
        if leadership is None:
            error = self._registry.not_leader(key)
            return answered(ReplicaFetchResponse(id=request.id, error=error))
        return asyncio.create_task(
            serving.replica_fetch(leadership, request, lambda: self._registry.not_leader(key)),
            name=f"replica fetch {key} for spu {request.follower}",
        )

    def _refuse(self, header: Any, why: str) -> asyncio.Future[Frame]:
        if isinstance(header, MalformedHeader):
            kind, request_id, message = header.type, header.id or 0, header.reason
        else:
            kind, request_id, message = header.type, header.id, f"{header.type}: {why}"
        result = _RESULT_TYPES.get(kind or "", ProduceResponse)
        error = DataError(code=ErrorCode.MALFORMED, message=message)
        return answered(result(id=request_id, error=error))


def answered(
    response: ProduceResponse
    | FetchResponse
    | ReplicaFetchResponse
    | ReplicaSessionResult
    | ReplicaChallenge
    | ReplicaProven,
) -> asyncio.Future[Frame]:
    """A future already holding ``response`` (with no body)."""
    future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
    future.set_result((response, b""))
    return future
