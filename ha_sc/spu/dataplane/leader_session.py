"""A leader SPU's side of one follower's fetch session: every partition that follower
fetches from this SPU, on one private-port connection (protocol/fetch_session.py).

The session holds, per partition, the follower's fetch offset as last told, the
leadership serving it, and a listener on the replica's change signal; a partition whose
replica changed (records, HW, role) is marked **dirty**. A fetch applies what it tells
(offsets noted as the follower's progress, so they move the HW and the ISR exactly as
single fetches did), then answers the dirty partitions that have records past the
follower's offset or a HW newer than the one last sent; with none, it waits (up to its
``wait_ms``) for one to change. So a round costs nothing for an idle partition.

A partition this SPU cannot serve (it does not lead it, the follower is not one of its
replicas, another generation, an offset out of range, a storage error) is answered with
an error and dropped from the session; the follower tells it again later. Fetches of
one session are served one at a time, in order: a fetch that arrives while another
waits ends that wait at once (the follower has something to tell, a partition added).
The session lives as long as its connection: the leader restarted or the connection
dropped, the follower opens a new one with its full set.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ha_sc.protocol.data import (
    DataError,
    ErrorCode,
    ReplicaSessionFetch,
    ReplicaSessionResult,
)
from ha_sc.protocol.fetch_session import (
    MalformedSessionBody,
    PartitionAnswer,
    SessionChanges,
    decode_changes,
    encode_answers,
)
from ha_sc.spu.dataplane.admission import RequestCaps, capped
from ha_sc.spu.dataplane.dispatch import answered
from ha_sc.spu.dataplane.leader import PartitionLeadership
from ha_sc.spu.dataplane.registry import ReplicaRegistry
from ha_sc.spu.dataplane.replica import Replica
from ha_sc.spu.dataplane.serving import MAX_READ, Frame
from ha_sc.spu.dataplane.waiting import ChangeSignal
from ha_sc.spu.storage import StorageError

log = logging.getLogger("ha_sc.spu.dataplane")

_session_ids = itertools.count(secrets.randbelow(1 << 30) + 1)


@dataclass(eq=False, slots=True)
class _Served:
    """One partition of the session."""

    replica: Replica
    leadership: PartitionLeadership
    offset: int
    """The follower's fetch offset, as it last told it."""
    listener: Callable[[], None] = field(repr=False)


class LeaderSession:
    """Follower SPU ``follower``'s fetch session on this leader (one connection)."""

    def __init__(
        self, registry: ReplicaRegistry, follower: int, caps: RequestCaps | None = None
    ) -> None:
        self.follower = follower
        self.id = 0
        """The session's id once a fetch opened it (0: none yet)."""
        self._registry = registry
        self._caps = caps
        self._served: dict[str, _Served] = {}
        self._dirty: set[str] = set()
        self._signal = ChangeSignal()
        self._turn = asyncio.Lock()
        self._queued = 0
        """Fetches waiting for their turn: the one being served stops waiting."""
        self._closed = False

    def __len__(self) -> int:
        return len(self._served)

    def fetch(self, request: ReplicaSessionFetch, body: bytes) -> asyncio.Future[Frame]:
        """The answer to ``request``, once it is due."""
        try:
            changes = decode_changes(body)
        except MalformedSessionBody as exc:
            error = DataError(code=ErrorCode.MALFORMED, message=str(exc))
            return answered(ReplicaSessionResult(id=request.id, session=self.id, error=error))
        if self._caps is not None:
            request = capped(request, self._caps)
        self._queued += 1
        self._signal.fire()
        return asyncio.create_task(
            self._serve(request, changes),
            name=f"session fetch {request.id} for spu {self.follower}",
        )

    def close(self) -> None:
        """The connection ended: stop listening to every partition's changes."""
        self._closed = True
        for key in list(self._served):
            self._drop(key)
        self._signal.fire()

    async def _serve(self, request: ReplicaSessionFetch, changes: SessionChanges) -> Frame:
        async with self._turn:
            self._queued -= 1
            if request.session not in (0, self.id):
                error = DataError(
                    code=ErrorCode.UNKNOWN_SESSION,
                    message=f"no fetch session {request.session} on this connection",
                )
                return ReplicaSessionResult(id=request.id, session=self.id, error=error), b""
            if request.session == 0:
                for key in list(self._served):
                    self._drop(key)
                self.id = next(_session_ids)
            answers: list[PartitionAnswer] = []
            for key in changes.forget:
                self._drop(key)
            for key, offset, generation in changes.fetch:
                refusal = self._tell(key, offset, generation)
                if refusal is not None:
                    answers.append(refusal)
            deadline = time.monotonic() + request.wait_ms / 1000
            while True:
                await self._collect(answers, request)
                remaining = deadline - time.monotonic()
                if answers or remaining <= 0 or self._queued or self._closed:
                    break
                if not self._dirty:
                    await self._signal.wait(remaining)
        result = ReplicaSessionResult(id=request.id, session=self.id)
        return result, encode_answers(answers)  # in pieces: the records are not copied

    def _tell(self, key: str, offset: int, generation: int | None) -> PartitionAnswer | None:
        """The follower fetches ``key`` from ``offset``: note it (an error answer if this
        SPU cannot serve it, and then it leaves the session)."""
        hosted = self._registry.get(key)
        leadership = hosted.leadership if hosted is not None else None
        if hosted is None or leadership is None:
            self._drop(key)
            return PartitionAnswer(key, offset, 0, 0, 0, error=self._registry.not_leader(key))
        replica = hosted.replica
        error: DataError | None = None
        ours = hosted.spec.generation
        if generation is not None and ours is not None and generation != ours:
            error = DataError(
                code=ErrorCode.UNKNOWN_PARTITION,
                message=f"{key} here is generation {ours}, not {generation}",
            )
        elif self.follower not in leadership.progress:
            error = DataError(
                code=ErrorCode.UNKNOWN_PARTITION,
                message=f"spu {self.follower} is not a replica of {key} here",
            )
        elif not replica.log_start <= offset <= replica.leo:
            error = DataError(
                code=ErrorCode.OFFSET_OUT_OF_RANGE,
                message=(
                    f"offset {offset} is outside {key}'s log ({replica.log_start}..{replica.leo})"
                ),
            )
        if error is not None:
            self._drop(key)
            return _answer(key, offset, replica, error=error)
        served = self._served.get(key)
        if served is None or served.leadership is not leadership:
            self._drop(key)
            served = _Served(replica, leadership, offset, listener=self._listener(key))
            self._served[key] = served
            replica.changes.listen(served.listener)
        served.offset = offset
        leadership.fetched(self.follower, offset)
        self._dirty.add(key)
        return None

    def _listener(self, key: str) -> Callable[[], None]:
        def changed() -> None:
            self._dirty.add(key)
            self._signal.fire()

        return changed

    def _drop(self, key: str) -> None:
        served = self._served.pop(key, None)
        self._dirty.discard(key)
        if served is not None:
            served.replica.changes.unlisten(served.listener)

    async def _collect(self, answers: list[PartitionAnswer], request: ReplicaSessionFetch) -> None:
        """Answer the dirty partitions that have records or a newer HW for the follower."""
        budget = request.max_bytes - sum(len(answer.data) for answer in answers)
        follower = self.follower
        dirty, self._dirty = self._dirty, set()
        for key in dirty:
            served = self._served.get(key)
            if served is None:
                continue
            replica, leadership = served.replica, served.leadership
            if not leadership.active or replica.closed:
                self._drop(key)
                answers.append(_answer(key, served.offset, replica, self._registry.not_leader(key)))
                continue
            data = b""
            if served.offset < replica.leo:
                if budget <= 0:
                    self._dirty.add(key)  # the answer is full: in the next one
                    continue
                limit = min(request.partition_max_bytes, budget, MAX_READ)
                try:
                    data = await replica.read(served.offset, limit, replica.leo)
                except (OSError, StorageError) as exc:
                    self._drop(key)
                    storage = DataError(code=ErrorCode.STORAGE, message=f"{key}: {exc}")
                    answers.append(_answer(key, served.offset, replica, storage))
                    continue
                budget -= len(data)
            if data or replica.hw > leadership.hw_sent.get(follower, -1):
                leadership.hw_sent[follower] = replica.hw
                answers.append(_answer(key, served.offset, replica, data=data))


def _answer(
    key: str, offset: int, replica: Replica, error: DataError | None = None, data: bytes = b""
) -> PartitionAnswer:
    return PartitionAnswer(
        key, offset, replica.hw, replica.leo, replica.log_start, data=data, error=error
    )
