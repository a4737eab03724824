"""HTTP exchanges with a set of SC replicas: hedged, leader-following, idempotent.

No call waits out one unresponsive replica while another answers. A call asks
one replica first (reads: the one that answered last; writes: the replica that
answered last as the leader) and, if no answer comes within a short hedge delay,
asks the next one too, and so on: the first answer wins and the others are
dropped. A replica that cannot be reached, or (reads) whose cache has not synced
(503), is passed over at once.

Writes follow a standby's 307 to the leader and remember it. Every write carries
an ``Idempotency-Key`` header, the same on every attempt of one call, so a write
whose outcome is unknown (no answer in time, a dropped connection, an attempt
dropped for a hedge) is sent again safely: the leader answers a repeat with the
first outcome. A write refused with 503 and ``Retry-After`` (nothing was
written) is tried again, as is one whose replicas could not be reached, until
the deadline. Pauses between rounds are jittered.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from ha_sc.client.errors import ApiError, Unreachable
from ha_sc.client.retry_policy import backoff
from ha_sc.protocol.api_wire import split_host_port

MAX_REDIRECTS = 3
RETRY_PAUSE = (0.05, 1.0)
"""Bounds of the (jittered) pause before another round of write attempts, in seconds."""
HEDGE_DELAY = (0.2, 1.0)
"""Bounds of the wait for an answer before another replica is asked too, in seconds."""
MAX_IN_FLIGHT = 3
"""Attempts of one call in flight at once; the oldest is dropped to start another."""
IDEMPOTENCY_HEADER = "Idempotency-Key"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def base_url(endpoint: str, *, scheme: str = "http") -> URL:
    """``host:port`` (reached with ``scheme``) or ``http(s)://host:port`` -> the base URL."""
    if "://" in endpoint:
        url = URL(endpoint)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"{endpoint!r} is not an http(s) address")
        return url.with_path("/")
    host, port = split_host_port(endpoint)
    return URL.build(scheme=scheme, host=host, port=port, path="/")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    doc: Any
    retry_after: float | None
    redirected: bool
    origin: URL
    """The replica that gave this answer (after redirects)."""


class _Lost(Exception):
    """The exchange failed without an answer; ``connected`` if the request may have
    reached the server."""

    def __init__(self, where: str, error: BaseException, *, connected: bool) -> None:
        super().__init__(f"{where}: {describe(error)}")
        self.connected = connected
        self.after_redirect = False


def hedge_delay(launched: int, draw: float) -> float:
    """Seconds to wait for an answer after attempt number ``launched`` (1 for the first)
    before asking another replica: doubling within HEDGE_DELAY, jittered by half."""
    ceiling = min(HEDGE_DELAY[0] * 2.0 ** max(launched - 1, 0), HEDGE_DELAY[1])
    return ceiling * (0.5 + draw / 2)


class Transport:
    """One aiohttp session over the replicas' public addresses; with ``tls`` (a client
    context, ``ha_sc.protocol.tls.client_context``) ``host:port`` endpoints are reached
    over HTTPS and the replicas' certificates checked with it."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float,
        token: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one SC endpoint is needed")
        scheme = "http" if tls is None else "https"
        self.bases = [base_url(e, scheme=scheme) for e in endpoints]
        self.tls = tls
        self.timeout = timeout
        self._preferred = 0
        self._leader: URL | None = None
        self._session: aiohttp.ClientSession | None = None
        self._headers = {} if token is None else {"Authorization": f"Bearer {token}"}

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = None if self.tls is None else aiohttp.TCPConnector(ssl=self.tls)
            self._session = aiohttp.ClientSession(headers=self._headers, connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def leader(self) -> URL | None:
        """The replica that last answered a write, as far as this client knows."""
        return self._leader

    def follow(self, leader: URL | None) -> None:
        """Remember the replica that answered a write (None: the leader is unknown)."""
        self._leader = leader

    def rotation(self) -> list[tuple[int, URL]]:
        """Endpoints in the order to try them: the last good one first."""
        count = len(self.bases)
        return [
            ((self._preferred + i) % count, self.bases[(self._preferred + i) % count])
            for i in range(count)
        ]

    def answered(self, index: int) -> None:
        self._preferred = index

    def targets(self, write: bool) -> list[tuple[int | None, URL]]:
        """Whom to ask, in order: for a write the known leader first."""
        order: list[tuple[int | None, URL]] = list(self.rotation())
        if write and self._leader is not None:
            leader = self._leader
            order = [(None, leader)] + [(i, b) for i, b in order if b.origin() != leader]
        return order

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        write: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """The JSON of a 2xx answer; raises ApiError with the server's message."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        write = write or method.upper() in WRITE_METHODS
        call = _Call(self, method, URL(path.lstrip("/")).with_query(params or {}), body, write)
        try:
            while (now := loop.time()) < deadline:
                if call.may_start_round(now):
                    call.start_round(now)
                elif call.may_launch(now):
                    call.launch(now, deadline)
                elif not call.in_flight:
                    if not call.queue and not write:
                        break
                    await asyncio.sleep(max(min(call.next_launch, deadline) - now, 0.0))
                else:
                    wait = deadline - now
                    if call.queue or write:
                        wait = min(wait, max(call.next_launch - now, 0.0))
                    done, _ = await asyncio.wait(
                        call.in_flight, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                    )
                    for task in done:
                        reply = call.settle(task, loop.time())
                        if reply is not None:
                            return reply.doc
        finally:
            await call.drop()
        raise call.failure()

    async def _exchange(
        self,
        method: str,
        url: URL,
        body: Any,
        headers: dict[str, str],
        write: bool,
        deadline: float,
    ) -> Reply:
        loop = asyncio.get_running_loop()
        redirected = False
        for _ in range(MAX_REDIRECTS + 1):
            remaining = max(deadline - loop.time(), 0.001)
            try:
                async with self.session().request(
                    method,
                    url,
                    json=body,
                    headers=headers,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=remaining),
                ) as response:
                    status = response.status
                    text = await response.text()
                    location = response.headers.get("Location")
                    retry_after = _seconds(response.headers.get("Retry-After"))
            except aiohttp.ClientConnectorError as exc:
                lost = _Lost(str(url.origin()), exc, connected=False)
                lost.after_redirect = redirected
                raise lost from None
            except (aiohttp.ClientError, TimeoutError) as exc:
                lost = _Lost(str(url.origin()), exc, connected=True)
                lost.after_redirect = redirected
                raise lost from None
            doc = _decode(text, status, url)
            if status == 307 and write and location:
                url = url.join(URL(location))
                redirected = True
                continue
            return Reply(status, doc, retry_after, redirected, url.origin())
        raise ApiError(508, f"more than {MAX_REDIRECTS} redirects, last to {url}")


class _Call:
    """The attempts of one call: who is asked next, what is in flight, what failed."""

    def __init__(
        self, transport: Transport, method: str, relative: URL, body: Any, write: bool
    ) -> None:
        self.transport = transport
        self.method = method
        self.relative = relative
        self.body = body
        self.write = write
        self.headers = {IDEMPOTENCY_HEADER: uuid.uuid4().hex} if write else {}
        self.queue = transport.targets(write)
        self.in_flight: list[asyncio.Task[Reply]] = []
        self.where: dict[asyncio.Task[Reply], int | None] = {}
        self.failures: list[str] = []
        self.error: ApiError | None = None
        self.maybe_applied = False
        self.launched = 0
        self.rounds = 1
        self.next_launch = 0.0

    def may_start_round(self, now: float) -> bool:
        """A write whose replicas were all tried without an answer: ask them again
        (attempts still in flight may hang on a frozen replica)."""
        return self.write and not self.queue and now >= self.next_launch

    def start_round(self, now: float) -> None:
        self.rounds += 1
        self.queue = self.transport.targets(self.write)
        self.next_launch = now + backoff(
            self.rounds - 1, initial=RETRY_PAUSE[0], maximum=RETRY_PAUSE[1]
        )

    def may_launch(self, now: float) -> bool:
        return bool(self.queue) and now >= self.next_launch

    def launch(self, now: float, deadline: float) -> None:
        """Ask the next replica; drops the oldest attempt if too many are in flight."""
        if len(self.in_flight) >= MAX_IN_FLIGHT:
            oldest = self.in_flight.pop(0)
            oldest.cancel()
            self.maybe_applied = self.maybe_applied or self.write
        index, base = self.queue.pop(0)
        self.launched += 1
        exchange = self.transport._exchange(
            self.method, base.join(self.relative), self.body, self.headers, self.write, deadline
        )
        task = asyncio.create_task(exchange, name=f"sc-call-{self.method}-{base.origin()}")
        self.in_flight.append(task)
        self.where[task] = index
        self.next_launch = now + hedge_delay(self.launched, random.random())

    def settle(self, task: asyncio.Task[Reply], now: float) -> Reply | None:
        """The reply to return, if ``task`` ended the call; raises a definitive refusal."""
        self.in_flight.remove(task)
        transport = self.transport
        try:
            reply = task.result()
        except _Lost as lost:
            self.failures.append(str(lost))
            self.maybe_applied = self.maybe_applied or (self.write and lost.connected)
            leader = transport.leader
            if self.write and leader is not None and str(lost).startswith(str(leader.origin())):
                transport.follow(None)
            self.next_launch = now
            return None
        if 200 <= reply.status < 300:
            index = self.where[task]
            if index is not None and not reply.redirected:
                transport.answered(index)
            if self.write:
                transport.follow(reply.origin)
            return reply
        if reply.status == 404 and self.method.upper() == "DELETE" and self.maybe_applied:
            return reply  # an earlier attempt may have deleted it (on a leader since replaced)
        self.error = _api_error(reply)
        if reply.status == 503 and self.write and reply.retry_after is not None:
            transport.follow(None)
            pause = backoff(self.rounds, initial=RETRY_PAUSE[0], maximum=RETRY_PAUSE[1])
            self.next_launch = now + min(reply.retry_after, pause)
            return None
        if reply.status == 503 and not self.write:
            self.next_launch = now  # a cache not synced yet: another replica may serve
            return None
        raise self.error

    async def drop(self) -> None:
        for task in self.in_flight:
            task.cancel()
        if self.in_flight:
            await asyncio.gather(*self.in_flight, return_exceptions=True)
        self.in_flight.clear()

    def failure(self) -> ApiError:
        """What to raise when the deadline passed or every replica failed."""
        if self.maybe_applied:
            last = self.failures[-1] if self.failures else "no answer in time"
            key = self.headers[IDEMPOTENCY_HEADER]
            return ApiError(
                503,
                f"{last}; the request may or may not have been applied (its attempts "
                f"carried {IDEMPOTENCY_HEADER} {key}: a retry with that key is safe)",
            )
        if self.error is not None:
            return self.error
        reasons = "; ".join(dict.fromkeys(self.failures)) or "no answer in time"
        return Unreachable("no SC replica could be reached: " + reasons)


def describe(error: BaseException) -> str:
    """A connection failure in words."""
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return str(error) or type(error).__name__


def _decode(text: str, status: int, url: URL) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        if 200 <= status < 300:
            raise ApiError(502, f"{url.origin()} answered with malformed JSON") from None
        return {"error": text.strip()}


def _api_error(reply: Reply) -> ApiError:
    doc = reply.doc
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        field = doc.get("field")
        return ApiError(reply.status, doc["error"], field if isinstance(field, str) else None)
    return ApiError(reply.status, f"HTTP {reply.status}")


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return max(float(text), 0.0)
    except ValueError:
        return None
