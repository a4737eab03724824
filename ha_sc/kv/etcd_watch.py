"""Watching one etcd key prefix from a revision, across lost connections.

Each watch is one etcd Watch stream of its own (gRPC asyncio), read on the
caller's event loop. aetcd's ``Watcher`` multiplexes every watch of a client on
one stream and reports a lost stream only as an error to every watch; a stream
per watch lets each resume on its own from its own revision.

When a stream is lost the watch opens a new one from the revision after the
last one it delivered. etcd sends all events of one revision in one response,
so that resume point neither repeats nor skips an event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Protocol

import grpc

from election.etcd_member import Services, describe_rpc_error
from ha_sc.kv.api import EventType, RevisionCompacted, WatchEvent

log = logging.getLogger(__name__)

RESUME_BACKOFF_FIRST = 0.1
RESUME_BACKOFF_MAX = 1.0


class WatchHost(Protocol):
    """What a watch needs from the KV client that owns it."""

    @property
    def closed(self) -> bool: ...

    @property
    def streams(self) -> set[WatchStream]:
        """Live streams, cancelled all at once when the client closes."""
        ...

    async def watch_services(self) -> Services:
        """The services of the endpoint in use, whose ``watch`` opens a Watch stream."""
        ...

    def watch_request(self, prefix: bytes, start_revision: int) -> Any:
        """The etcd WatchRequest creating a watch of ``prefix`` from ``start_revision``."""
        ...

    def endpoint_lost(self) -> None:
        """The endpoint in use stopped answering: move on to the next one."""
        ...


class StreamLost(Exception):
    """A watch stream ended; the watch opens another one."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WatchStream:
    """One etcd Watch RPC over a key range from a revision."""

    def __init__(self, create: Any) -> None:
        self._create = create
        self._call: Any = None
        self._cancelled = False

    async def start(self, services: Services) -> None:
        """Open the stream and send the create request."""
        with self._lost_as_stream_lost():
            self._call = services.watch()
            if self._cancelled:
                self._call.cancel()
            await self._call.write(self._create)

    async def next_response(self) -> Any:
        """The next etcd WatchResponse; raises StreamLost when the stream has ended."""
        with self._lost_as_stream_lost():
            response = await self._call.read()
        if response is grpc.aio.EOF:
            raise StreamLost("stream closed by the server")
        return response

    def cancel(self) -> None:
        self._cancelled = True
        if self._call is not None:
            self._call.cancel()

    @contextmanager
    def _lost_as_stream_lost(self) -> Iterator[None]:
        """Whatever ends this stream (a gRPC error, a closed channel, a call ended under
        us, our own ``cancel``) as ``StreamLost``; a cancel of the task itself goes
        through."""
        try:
            yield
        except asyncio.CancelledError:
            if self._cancelled_here():
                raise StreamLost("watch stream cancelled") from None
            raise
        except grpc.aio.AioRpcError as error:
            raise StreamLost(describe_rpc_error(error)) from error
        except Exception as error:
            raise StreamLost(f"{type(error).__name__}: {error}") from error

    def _cancelled_here(self) -> bool:
        """Whether a CancelledError from gRPC means only that ``cancel`` ended the call
        (gRPC raises it then), not that the task itself is being cancelled."""
        task = asyncio.current_task()
        return self._cancelled and (task is None or not task.cancelling())

    async def ended(self) -> None:
        """Wait until gRPC has finished with the stream (after ``cancel``)."""
        if self._call is not None:
            with suppress(Exception):
                await self._call.code()


async def watch_prefix(
    host: WatchHost, kind: str, prefix: bytes, start_revision: int
) -> AsyncIterator[WatchEvent]:
    """Events under ``prefix`` from ``start_revision`` on, in order, each once, forever.

    Ends quietly when the host closes; raises RevisionCompacted when etcd no
    longer has the history the watch needs next.
    """
    next_revision = max(start_revision, 1)
    backoff = RESUME_BACKOFF_FIRST
    lost = False
    while not host.closed:
        stream = WatchStream(host.watch_request(prefix, next_revision))
        host.streams.add(stream)
        try:
            await stream.start(await host.watch_services())
            while True:
                response = await stream.next_response()
                _check_response(response, next_revision)
                if response.created:
                    backoff = _resumed(kind, next_revision, lost)
                    lost = False
                    continue
                for event in _events(response, kind, prefix, next_revision):
                    yield event
                next_revision = _after(response, next_revision)
        except StreamLost as error:
            if host.closed:
                return
            _report_loss(kind, error.reason, next_revision, first=not lost)
            lost = True
            host.endpoint_lost()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RESUME_BACKOFF_MAX)
        finally:
            stream.cancel()
            host.streams.discard(stream)
            await stream.ended()


def _check_response(response: Any, next_revision: int) -> None:
    if response.compact_revision:
        # etcd's compact_revision is the oldest revision it still has: all before it are gone
        raise RevisionCompacted(next_revision, int(response.compact_revision) - 1)
    if response.canceled:
        raise StreamLost(f"cancelled by etcd: {response.cancel_reason or 'no reason given'}")


def _resumed(kind: str, next_revision: int, lost: bool) -> float:
    if lost:
        log.info("etcd watch of %s resumed from revision %d", kind, next_revision)
    return RESUME_BACKOFF_FIRST


def _report_loss(kind: str, reason: str, next_revision: int, *, first: bool) -> None:
    level = logging.WARNING if first else logging.DEBUG
    log.log(
        level,
        "etcd watch of %s lost (%s); resuming from revision %d",
        kind,
        reason,
        next_revision,
    )


def _events(response: Any, kind: str, prefix: bytes, floor: int) -> Iterator[WatchEvent]:
    for event in response.events:
        if event.kv.mod_revision >= floor:
            yield _watch_event(event, kind, prefix)


def _after(response: Any, next_revision: int) -> int:
    """The resume point once every event of ``response`` is delivered."""
    revisions = [int(event.kv.mod_revision) for event in response.events]
    return max([next_revision - 1, *revisions]) + 1


def _watch_event(event: Any, kind: str, prefix: bytes) -> WatchEvent:
    kv = event.kv
    key = bytes(kv.key)[len(prefix) :].decode()
    if event.type == event.DELETE:
        # a delete carries only the tombstone: its created revision is not known here (the
        # watch asks for no previous values), and 0 says so
        return WatchEvent(EventType.DELETE, kind, key, b"", int(kv.mod_revision), 0)
    return WatchEvent(
        EventType.PUT, kind, key, bytes(kv.value), int(kv.mod_revision), int(kv.create_revision)
    )
