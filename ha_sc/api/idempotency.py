"""Writes carrying an ``Idempotency-Key`` are answered once: a repeat gets the first outcome.

A client whose write timed out after sending cannot tell whether it was applied;
it sends the write again with the same key. This replica remembers, per key, the
request it answered (method, path, body digest) and the final answer: a repeat
of the same request gets that answer again (and one that arrives while the first
is still running waits for it); the same key on a different request is refused
(422). Only final answers are kept (2xx and 4xx); a redirect or a 5xx leaves
nothing behind, so the repeat is carried out afresh. The ledger is in memory and
bounded by count and age: it covers retries that reach the same leader.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from ha_sc.api.problems import ApiProblem, Handler

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200
DEFAULT_CAPACITY = 10_000
DEFAULT_MAX_AGE = 600.0
"""Seconds an answer is remembered: far beyond any client's retry deadline."""
KEPT_HEADERS = ("Content-Type", "Location")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]

    def response(self) -> web.Response:
        headers = {**dict(self.headers), "Idempotent-Replay": "true"}
        return web.Response(status=self.status, body=self.body, headers=headers)


@dataclass(slots=True)
class Entry:
    fingerprint: str
    at: float
    answer: asyncio.Future[Answer | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def keeps(status: int) -> bool:
    """Whether an answer with ``status`` is final, so a repeat must get it again."""
    return 200 <= status < 300 or (400 <= status < 500 and status not in (408, 425, 429))


class RequestLedger:
    """Answers by idempotency key, bounded by count and age."""

    def __init__(
        self,
        *,
        capacity: int = DEFAULT_CAPACITY,
        max_age: float = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1 or max_age <= 0:
            raise ValueError("capacity and max_age must be positive")
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._capacity = capacity
        self._max_age = max_age
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, key: str) -> Entry | None:
        self._expire()
        return self._entries.get(key)

    def begin(self, key: str, fingerprint: str) -> Entry:
        self._expire()
        entry = Entry(fingerprint, self._clock())
        self._entries[key] = entry
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return entry

    def finish(self, key: str, entry: Entry, answer: Answer | None) -> None:
        """Record the outcome; None (not final) forgets the key."""
        if not entry.answer.done():
            entry.answer.set_result(answer)
        if answer is None and self._entries.get(key) is entry:
            del self._entries[key]

    def _expire(self) -> None:
        oldest = self._clock() - self._max_age
        while self._entries:
            entry = next(iter(self._entries.values()))
            if entry.at >= oldest:
                break
            self._entries.popitem(last=False)


LEDGER = web.AppKey("idempotency-ledger", RequestLedger)


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Runs a keyed write once per key; outermost, so it sees the final answer."""
    key = request.headers.get(HEADER)
    if key is None or request.method in ("GET", "HEAD", "OPTIONS"):
        return await handler(request)
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        return ApiProblem(
            400, f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters"
        ).response()
    ledger = request.app[LEDGER]
    digest = hashlib.sha256(await request.read()).hexdigest()
    fingerprint = f"{request.method} {request.rel_url} {digest}"
    earlier = ledger.find(key)
    if earlier is not None:
        if earlier.fingerprint != fingerprint:
            return ApiProblem(422, f"{HEADER} {key!r} was used for a different request").response()
        first = await asyncio.shield(earlier.answer)
        if first is not None:
            return first.response()
        return await idempotency_middleware(request, handler)
    entry = ledger.begin(key, fingerprint)
    # The first request of a key runs to its end even if its client goes (the public API
    # cancels a request whose connection closed): a write it sent may land, and the
    # repeats of the key, waiting on this entry, must get its outcome, not start afresh.
    work = asyncio.create_task(_first(request, handler, ledger, key, entry), name=f"write-{key}")
    work.add_done_callback(_retrieved)
    return await asyncio.shield(work)


async def _first(
    request: web.Request, handler: Handler, ledger: RequestLedger, key: str, entry: Entry
) -> web.StreamResponse:
    """Handle the first request of ``key`` and record its answer for the repeats."""
    answer: Answer | None = None
    try:
        response = await handler(request)
        body = response.body if isinstance(response, web.Response) else None
        if keeps(response.status) and isinstance(body, bytes | bytearray | None):
            kept = tuple((k, response.headers[k]) for k in KEPT_HEADERS if k in response.headers)
            answer = Answer(response.status, bytes(body or b""), kept)
        return response
    finally:
        ledger.finish(key, entry, answer)


def _retrieved(task: asyncio.Task[web.StreamResponse]) -> None:
    """A first request whose client left ends with nobody awaiting it: its failure is
    consumed here (the request that awaited it, if any, got it already)."""
    if not task.cancelled():
        task.exception()
