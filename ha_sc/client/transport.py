"""HTTP exchanges with a set of SC replicas: fail over, follow the leader, retry.

Reads go to the replica that answered last, then the next ones: a replica that
cannot be reached, or whose cache has not synced (503), is passed over. Writes
follow a standby's 307 to the leader; a write refused with 503 and
``Retry-After`` (no leader yet, leadership changed: nothing was written) is
tried again until the deadline, as is one whose leader could not be reached
after a redirect (it may just have died). A write whose connection drops midway
is not repeated: it may have been applied.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from ha_sc.api.wire import split_host_port
from ha_sc.client.errors import ApiError, Unreachable

MAX_REDIRECTS = 3
RETRY_PAUSE = (0.05, 1.0)
"""Bounds of the pause between write attempts, in seconds."""
MIN_ATTEMPT = 0.1
"""A write is tried again only if at least this many seconds are left for it."""


def base_url(endpoint: str) -> URL:
    """``host:port`` or ``http(s)://host:port`` -> the base URL."""
    if "://" in endpoint:
        url = URL(endpoint)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"{endpoint!r} is not an http(s) address")
        return url.with_path("/")
    host, port = split_host_port(endpoint)
    return URL.build(scheme="http", host=host, port=port, path="/")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    doc: Any
    retry_after: float | None
    redirected: bool


class _Lost(Exception):
    """The exchange failed without an answer; ``connected`` if the request may have
    reached the server."""

    def __init__(self, where: str, error: BaseException, *, connected: bool) -> None:
        super().__init__(f"{where}: {describe(error)}")
        self.connected = connected
        self.after_redirect = False


class Transport:
    """One aiohttp session over the replicas' public addresses."""

    def __init__(self, endpoints: Sequence[str], *, timeout: float) -> None:
        if not endpoints:
            raise ValueError("at least one SC endpoint is needed")
        self.bases = [base_url(e) for e in endpoints]
        self.timeout = timeout
        self._preferred = 0
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def rotation(self) -> list[tuple[int, URL]]:
        """Endpoints in the order to try them: the last good one first."""
        count = len(self.bases)
        return [
            ((self._preferred + i) % count, self.bases[(self._preferred + i) % count])
            for i in range(count)
        ]

    def answered(self, index: int) -> None:
        self._preferred = index

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
        pause = RETRY_PAUSE[0]
        while True:
            retry_in: float | None = None
            failures: list[str] = []
            error: ApiError | None = None
            for index, base in self.rotation():
                url = base.join(URL(path.lstrip("/"))).with_query(params or {})
                try:
                    reply = await self._exchange(method, url, body, write, deadline)
                except _Lost as lost:
                    failures.append(str(lost))
                    if write and lost.connected:
                        raise ApiError(
                            503, f"{lost}; the request may or may not have been applied"
                        ) from None
                    if write and lost.after_redirect:
                        retry_in = pause
                    continue
                if 200 <= reply.status < 300:
                    self.answered(index)
                    return reply.doc
                error = _api_error(reply)
                if reply.status == 503 and write and reply.retry_after is not None:
                    retry_in = reply.retry_after
                    break
                if reply.status == 503 and not write:
                    continue  # e.g. a cache not synced yet: another replica may serve
                raise error
            remaining = deadline - loop.time()
            if retry_in is None or remaining < MIN_ATTEMPT:
                if error is not None:
                    raise error
                raise Unreachable("no SC replica could be reached: " + "; ".join(failures))
            await asyncio.sleep(min(retry_in, pause, remaining - MIN_ATTEMPT))
            pause = min(pause * 2, RETRY_PAUSE[1])

    async def _exchange(
        self, method: str, url: URL, body: Any, write: bool, deadline: float
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
            return Reply(status, doc, retry_after, redirected)
        raise ApiError(508, f"more than {MAX_REDIRECTS} redirects, last to {url}")


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
