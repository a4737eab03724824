"""The KV store on a real etcd cluster, through the asyncio client ``aetcd``.

Object ``<kind>/<key>`` lives at etcd key ``<root><kind>/<key>``; the value is
stored exactly as given. A fenced write is one etcd transaction that also
compares the create revision of the election's leader key with the guard's
epoch. Every call runs on the caller's event loop (gRPC asyncio); nothing
blocks it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import grpc
from aetcd import rpc as etcdrpc

from election.etcd_access import PLAIN, EtcdCredentials
from election.etcd_keys import DEFAULT_ROOT, leader_key
from election.etcd_member import EtcdMember, Services, status_of
from election.guard import Guard
from ha_sc.kv.api import (
    BatchOp,
    BatchOutcome,
    BatchOutcomes,
    CreateOp,
    DeleteOp,
    KeyExists,
    KeyNotFound,
    KvEntry,
    KvError,
    KvUnavailable,
    Listing,
    RevisionConflict,
    StaleGuard,
    UpdateOp,
    WatchEvent,
)
from ha_sc.kv.etcd_limits import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_TXN_OPS,
    OP_OVERHEAD,
    TOO_MANY_OPS,
    ServerLimits,
    refusal,
)
from ha_sc.kv.etcd_watch import WatchStream, watch_prefix
from ha_sc.kv.state_machine import ObjectId, owner_of

log = logging.getLogger(__name__)

DEFAULT_REQUEST_TIMEOUT = 5.0
LIST_PAGE_SIZE = 500
LIST_ATTEMPTS = 3
READ_RETRY_PAUSE = 0.1
CASCADE_CHUNK = 100  # objects per transaction: etcd allows 128 ops by default
CASCADE_ATTEMPTS = 5
CHUNK_ATTEMPTS = 3
"""Transactions a batch chunk gets before what keeps racing is written one op at a time."""

_UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
_CHANNEL_OPTIONS = [
    # re-dial a restarted server within a second instead of gRPC's default minutes
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # notice a silently dead connection (etcd refuses pings more often than every 5 s)
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


_KeyValues = list[Any]  # etcd KeyValue messages


class _HistoryGone(KvError):
    """A paged read's revision was compacted between two pages."""


class _TooManyOps(KvError):
    """etcd refused a transaction for its operation count: nothing of it was written."""


@dataclass(frozen=True, slots=True)
class _TxnOutcome:
    succeeded: bool
    revision: int
    found: tuple[Any | None, ...]  # what the failure branch read, in order; None if absent


@dataclass(frozen=True, slots=True)
class _Scan:
    """Every key under the root at one revision; leader keys never own anything."""

    revision: int
    objects: dict[ObjectId, KvEntry]
    children: dict[ObjectId, list[ObjectId]]


class EtcdKv:
    """KvStore on etcd. ``endpoints`` are ``host:port`` of the cluster's members.

    Calls go to one endpoint at a time; one that cannot be reached hands over
    to the next. Reads retry within ``request_timeout``; a write is sent once
    (re-sending one whose outcome is unknown could apply it twice) and
    KvUnavailable tells the caller it may retry.
    """

    def __init__(
        self,
        endpoints: list[str],
        *,
        root: str = DEFAULT_ROOT,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        credentials: EtcdCredentials = PLAIN,
        max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        if not endpoints:
            raise ValueError("EtcdKv needs at least one endpoint")
        if max_txn_ops < 2:
            raise ValueError(
                f"max_txn_ops must be at least 2 (the server's limit), got {max_txn_ops}"
            )
        self._limits = ServerLimits(max_txn_ops, max_request_bytes)
        if not root.endswith("/"):
            raise ValueError(f"the KV root must end with '/', got {root!r}")
        self._endpoints = list(endpoints)
        self._members = [
            EtcdMember(endpoint, _CHANNEL_OPTIONS, credentials) for endpoint in endpoints
        ]
        self._current = 0
        self._root = root
        self._timeout = request_timeout
        self._closed = False
        self._streams: set[WatchStream] = set()
        self._election_prefix = leader_key("", root).encode()

    @property
    def root(self) -> str:
        return self._root

    @property
    def max_txn_ops(self) -> int:
        """The most compares, or ops in one branch, this client puts in a transaction."""
        return self._limits.max_txn_ops

    # KvStore

    async def list(self, kind: str) -> Listing:
        prefix = self._prefix(kind)
        kvs, revision = await self._range_all(prefix)
        entries = tuple(_entry(kind, bytes(kv.key)[len(prefix) :].decode(), kv) for kv in kvs)
        return Listing(entries, revision)

    async def get(self, kind: str, key: str) -> KvEntry | None:
        request = etcdrpc.RangeRequest(key=self._etcd_key(kind, key))
        response = await self._read("Range", request)
        return _entry(kind, key, response.kvs[0]) if response.kvs else None

    async def create(self, kind: str, key: str, value: bytes, *, guard: Guard | None = None) -> int:
        target = self._etcd_key(kind, key)
        outcome = await self._txn(guard, [_version(target, "==", 0)], [_put(target, value)], [])
        if not outcome.succeeded:
            raise KeyExists(kind, key)
        return outcome.revision

    async def update(
        self,
        kind: str,
        key: str,
        value: bytes,
        *,
        expected_revision: int,
        guard: Guard | None = None,
    ) -> int:
        target = self._etcd_key(kind, key)
        compares = [_version(target, ">", 0), _mod(target, expected_revision)]
        outcome = await self._txn(guard, compares, [_put(target, value)], [target])
        if not outcome.succeeded:
            raise _mismatch(kind, key, expected_revision, outcome.found[0])
        return outcome.revision

    async def delete(
        self,
        kind: str,
        key: str,
        *,
        expected_revision: int | None = None,
        guard: Guard | None = None,
    ) -> int:
        # Owned objects go first, in transactions of at most CASCADE_CHUNK
        # deletes (etcd caps a transaction at --max-txn-ops, 128 by default),
        # then the owner in a transaction of its own. A crash in between leaves
        # some owned objects deleted and the owner present, still owning the
        # rest: repeating the delete finishes the job.
        for _ in range(CASCADE_ATTEMPTS):
            scan = await self._scan()
            current = scan.objects.get((kind, key))
            revision = expected_revision
            if revision is None:
                revision = current.revision if current is not None else 0
            unchanged = current is not None and current.revision == revision
            if unchanged and not await self._delete_owned(scan, (kind, key), revision, guard):
                continue
            outcome = await self._delete_owner(kind, key, revision, scan.revision, guard)
            if outcome.succeeded:
                return outcome.revision
            refusal = _owner_refusal(kind, key, expected_revision, outcome.found[0])
            if refusal is not None:
                raise refusal
            log.info(
                "%s/%s changed, or objects were created, while deleting; re-reading", kind, key
            )
        raise KvError(
            f"delete of {kind}/{key} kept racing with concurrent writes; owned objects "
            "deleted so far stay deleted, repeat the delete to finish"
        )

    async def write_batch(
        self, ops: Sequence[BatchOp], *, guard: Guard | None = None
    ) -> BatchOutcomes:
        """Creates and updates in transactions of at most the server's operation limit
        (one compare per op, one more for the guard) and request size, cut where a key
        comes again; each delete on its own, since it cascades. When a transaction's
        compare fails and the guard holds, the ops whose condition failed get their own
        refusal and the others go again (``_batch_chunk``). A transaction's ops share its
        revision. A StaleGuard stops the batch: the chunks before it were written while
        the guard was current."""
        outcomes: list[BatchOutcome] = []
        while True:
            size = self._limits.max_txn_ops - (guard is not None)
            try:
                for step in txn_chunks(ops[len(outcomes) :], size, *self._txn_bytes()):
                    if isinstance(step, DeleteOp):
                        outcomes.append(await self._batch_delete(step, guard))
                    else:
                        outcomes.extend(await self._batch_chunk(step, guard))
                return outcomes
            except _TooManyOps:
                if self._limits.max_txn_ops <= DEFAULT_MAX_TXN_OPS:
                    raise
                self._fall_back_to_default_ops()

    def _txn_bytes(self) -> tuple[int, int]:
        return self._limits.txn_bytes, len(self._root)

    def _fall_back_to_default_ops(self) -> None:
        """The server refused a transaction of up to ``max_txn_ops`` ops (nothing of it was
        written): it keeps etcd's default, so this client does too from now on."""
        log.warning(
            "etcd refused a transaction of up to %d operations: its --max-txn-ops is lower "
            "than --etcd-max-txn-ops says; sending at most %d from now on",
            self._limits.max_txn_ops,
            DEFAULT_MAX_TXN_OPS,
        )
        self._limits = replace(self._limits, max_txn_ops=DEFAULT_MAX_TXN_OPS)

    def watch(self, kind: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        return watch_prefix(self, kind, self._prefix(kind), start_revision)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        streams = list(self._streams)
        for stream in streams:
            stream.cancel()
        self._streams.clear()
        await asyncio.gather(*(stream.ended() for stream in streams))
        await asyncio.gather(*(member.close() for member in self._members))

    # WatchHost

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def streams(self) -> set[WatchStream]:
        return self._streams

    async def watch_services(self) -> Services:
        return await self._members[self._current].services()

    def watch_request(self, prefix: bytes, start_revision: int) -> Any:
        # no prev_kv: etcd would read every updated key's previous revision back from its
        # database for each watcher and send it along, and nothing here uses it
        create = etcdrpc.WatchCreateRequest(
            key=prefix, range_end=range_end(prefix), start_revision=start_revision
        )
        return etcdrpc.WatchRequest(create_request=create)

    def endpoint_lost(self) -> None:
        self._move_on(self._current)

    # batches

    async def _batch_chunk(
        self, chunk: Sequence[CreateOp | UpdateOp], guard: Guard | None
    ) -> BatchOutcomes:
        """``chunk`` as one transaction. When a condition fails, the failure branch has read
        every key's revisions (not values) at that revision: the ops whose condition failed
        get their refusal, and the rest go again as one transaction. Whatever still races
        after CHUNK_ATTEMPTS goes one by one."""
        outcomes: list[BatchOutcome | None] = [None] * len(chunk)
        pending = list(range(len(chunk)))
        for _ in range(CHUNK_ATTEMPTS):
            ops = [chunk[i] for i in pending]
            targets = [self._etcd_key(op.kind, op.key) for op in ops]
            compares = [self._condition(op) for op in ops]
            puts = [_put(target, op.value) for target, op in zip(targets, ops, strict=True)]
            outcome = await self._txn(guard, compares, puts, targets, keys_only=True)
            if outcome.succeeded:
                for i in pending:
                    outcomes[i] = outcome.revision
                return [o for o in outcomes if o is not None]
            unrefused = []
            for i, found in zip(pending, outcome.found, strict=True):
                refused = _refusal(chunk[i], found)
                if refused is None:
                    unrefused.append(i)
                else:
                    outcomes[i] = refused
            log.debug(
                "a batch of %d writes met %d changed objects; writing the others again",
                len(pending),
                len(pending) - len(unrefused),
            )
            pending = unrefused
            if not pending:
                return [o for o in outcomes if o is not None]
        for i in pending:
            outcomes[i] = await self._batch_single(chunk[i], guard)
        return [o for o in outcomes if o is not None]

    def _condition(self, op: CreateOp | UpdateOp) -> Any:
        target = self._etcd_key(op.kind, op.key)
        if isinstance(op, CreateOp):
            return _version(target, "==", 0)
        # an absent key has mod revision 0, and no expected revision is 0
        return _mod(target, op.expected_revision)

    async def _batch_single(self, op: CreateOp | UpdateOp, guard: Guard | None) -> BatchOutcome:
        try:
            if isinstance(op, CreateOp):
                return await self.create(op.kind, op.key, op.value, guard=guard)
            return await self.update(
                op.kind, op.key, op.value, expected_revision=op.expected_revision, guard=guard
            )
        except (KeyExists, KeyNotFound, RevisionConflict) as refused:
            return refused

    async def _batch_delete(self, op: DeleteOp, guard: Guard | None) -> BatchOutcome:
        try:
            return await self.delete(
                op.kind, op.key, expected_revision=op.expected_revision, guard=guard
            )
        except (KeyNotFound, RevisionConflict) as refused:
            return refused

    # cascade

    async def _delete_owned(
        self, scan: _Scan, owner: ObjectId, owner_revision: int, guard: Guard | None
    ) -> bool:
        """Delete everything ``owner`` owns, deepest first; False if something changed."""
        owned = _owned_tree(scan.children, owner)
        if owned:
            log.info("deleting %s/%s and the %d objects it owns", *owner, len(owned))
        owner_key = self._etcd_key(*owner)
        for start in range(0, len(owned), CASCADE_CHUNK):
            chunk = owned[start : start + CASCADE_CHUNK]
            compares = [_version(owner_key, ">", 0), _mod(owner_key, owner_revision)]
            compares += [_mod(self._etcd_key(*o), scan.objects[o].revision) for o in chunk]
            deletes = [_delete(self._etcd_key(*o)) for o in chunk]
            if not (await self._txn(guard, compares, deletes, [])).succeeded:
                log.info("objects owned by %s/%s changed while deleting; re-reading", *owner)
                return False
        return True

    async def _delete_owner(
        self, kind: str, key: str, revision: int, scanned_at: int, guard: Guard | None
    ) -> _TxnOutcome:
        """Delete the owner at ``revision`` if nothing was created since the scan."""
        target = self._etcd_key(kind, key)
        root = self._root.encode()
        compares = [
            _version(target, ">", 0),
            _mod(target, revision),
            # nothing created since the scan, so no new owned object is left behind
            _compare(root, "<", create_revision=scanned_at + 1, until=range_end(root)),
        ]
        return await self._txn(guard, compares, [_delete(target)], [target])

    async def _scan(self) -> _Scan:
        kvs, revision = await self._range_all(self._root.encode())
        objects: dict[ObjectId, KvEntry] = {}
        children: dict[ObjectId, list[ObjectId]] = {}
        for kv in kvs:
            name = bytes(kv.key)
            kind, _, key = name[len(self._root) :].decode().partition("/")
            objects[(kind, key)] = entry = _entry(kind, key, kv)
            owner = None if name.startswith(self._election_prefix) else owner_of(entry.value)
            if owner is not None:
                children.setdefault(owner, []).append((kind, key))
        return _Scan(revision, objects, children)

    # transactions and calls

    async def _txn(
        self,
        guard: Guard | None,
        compares: Sequence[Any],
        success: Sequence[Any],
        reads: Sequence[bytes],
        *,
        keys_only: bool = False,
    ) -> _TxnOutcome:
        """One etcd transaction, fenced by ``guard``; the failure branch reads ``reads``
        (with ``keys_only``, their revisions without their values)."""
        failure = [_range(key, keys_only=keys_only) for key in reads]
        if guard is not None:
            holder = leader_key(guard.election, self._root).encode()
            compares = [_compare(holder, "==", create_revision=guard.epoch), *compares]
            failure = [_range(holder), *failure]
        request = etcdrpc.TxnRequest(compare=compares, success=success, failure=failure)
        response = await self._write("Txn", request)
        revision = int(response.header.revision)
        if response.succeeded:
            return _TxnOutcome(True, revision, ())
        found = tuple(_first(op.response_range) for op in response.responses)
        if guard is not None:
            holder_kv, found = found[0], found[1:]
            if holder_kv is None or int(holder_kv.create_revision) != guard.epoch:
                raise StaleGuard(guard)
        return _TxnOutcome(False, revision, found)

    async def _range_all(self, prefix: bytes) -> tuple[_KeyValues, int]:
        """Every key under ``prefix`` and the revision they were read at."""
        for _ in range(LIST_ATTEMPTS):
            try:
                return await self._range_pages(prefix)
            except _HistoryGone:
                log.info("history compacted while reading %r; reading again", prefix)
        raise KvUnavailable(f"could not read {prefix!r}: compacted while paging, every time")

    async def _range_pages(self, prefix: bytes) -> tuple[_KeyValues, int]:
        end = range_end(prefix)
        response = await self._read(
            "Range", etcdrpc.RangeRequest(key=prefix, range_end=end, limit=LIST_PAGE_SIZE)
        )
        revision = int(response.header.revision)
        kvs = list(response.kvs)
        while response.more:
            page = etcdrpc.RangeRequest(
                key=bytes(kvs[-1].key) + b"\0",
                range_end=end,
                limit=LIST_PAGE_SIZE,
                revision=revision,
            )
            response = await self._read("Range", page)
            kvs.extend(response.kvs)
        return kvs, revision

    async def _read(self, method: str, request: Any) -> Any:
        """A read, retried (other endpoints included) until the request timeout."""
        deadline = time.monotonic() + self._timeout
        attempt_timeout = self._timeout / len(self._members)
        while True:
            try:
                return await self._call(
                    method, request, min(deadline, time.monotonic() + attempt_timeout)
                )
            except KvUnavailable:
                if self._closed or time.monotonic() + READ_RETRY_PAUSE >= deadline:
                    raise
                await asyncio.sleep(READ_RETRY_PAUSE)

    async def _write(self, method: str, request: Any) -> Any:
        """A write, sent once; waits up to the request timeout for a connection."""
        return await self._call(method, request, time.monotonic() + self._timeout, write=True)

    async def _call(
        self, method: str, request: Any, deadline: float, *, write: bool = False
    ) -> Any:
        if self._closed:
            raise KvUnavailable("the etcd KV client is closed")
        index = self._current
        try:
            services = await self._members[index].services(max(deadline - time.monotonic(), 0.01))
            rpc = getattr(services.kvstub, method)
            timeout = max(deadline - time.monotonic(), 0.01)
            return await rpc(request, timeout=timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as error:
            self._members[index].call_failed(error)
            raise self._failure(index, method, error, write=write) from error
        except grpc.aio.UsageError as error:  # the channel was closed before the call
            raise KvUnavailable(f"etcd {method} failed: {error}") from error
        except asyncio.CancelledError:
            # gRPC raises CancelledError in a call that closing the channel cancelled
            task = asyncio.current_task()
            if self._closed and (task is None or not task.cancelling()):
                raise KvUnavailable(f"the etcd KV client was closed during {method}") from None
            raise

    def _failure(
        self, index: int, method: str, error: grpc.aio.AioRpcError, *, write: bool
    ) -> KvError:
        code = status_of(error)
        reason = self._members[index].explain(error)
        if self._closed:
            return KvUnavailable(f"the etcd KV client was closed during {method}")
        if code == grpc.StatusCode.OUT_OF_RANGE:
            return _HistoryGone(f"etcd {method}: {reason}")
        if code not in _UNREACHABLE:
            limit = refusal(reason, self._limits)
            if limit is not None:
                refused = _TooManyOps if TOO_MANY_OPS in reason else KvError
                return refused(f"etcd refused {method}: {limit} ({reason})")
            return KvError(f"etcd rejected {method}: {reason}")
        self._move_on(index)
        outcome = "; the write may or may not have been applied" if write else ""
        return KvUnavailable(f"etcd at {self._endpoints[index]} unreachable ({reason}){outcome}")

    def _move_on(self, failed: int) -> None:
        if self._current == failed and len(self._members) > 1:
            self._current = (failed + 1) % len(self._members)
            log.warning(
                "etcd endpoint %s unreachable; switching to %s",
                self._endpoints[failed],
                self._endpoints[self._current],
            )

    # keys

    def _prefix(self, kind: str) -> bytes:
        return f"{self._root}{kind}/".encode()

    def _etcd_key(self, kind: str, key: str) -> bytes:
        return f"{self._root}{kind}/{key}".encode()


def txn_chunks(
    ops: Sequence[BatchOp], size: int, max_bytes: int = DEFAULT_MAX_REQUEST_BYTES, root: int = 0
) -> Iterator[list[CreateOp | UpdateOp] | DeleteOp]:
    """``ops`` in order as transactions of at most ``size`` creates and updates on
    distinct keys (etcd refuses a key twice in one transaction) whose keys (each
    ``root`` bytes longer in etcd) and values come to at most ``max_bytes``, and lone
    deletes. An op too large for any transaction goes alone: etcd then names the limit."""
    chunk: list[CreateOp | UpdateOp] = []
    keys: set[tuple[str, str]] = set()
    used = 0
    for op in ops:
        if isinstance(op, DeleteOp):
            if chunk:
                yield chunk
            chunk, keys, used = [], set(), 0
            yield op
            continue
        cost = _txn_bytes(op, root)
        if chunk and (len(chunk) >= size or (op.kind, op.key) in keys or used + cost > max_bytes):
            yield chunk
            chunk, keys, used = [], set(), 0
        chunk.append(op)
        keys.add((op.kind, op.key))
        used += cost
    if chunk:
        yield chunk


def _txn_bytes(op: CreateOp | UpdateOp, root: int) -> int:
    """What ``op`` adds to a transaction: its key in the compare and in the put, its value."""
    key = root + len(op.kind) + 1 + len(op.key.encode())
    return 2 * key + len(op.value) + OP_OVERHEAD


def _entry(kind: str, key: str, kv: Any) -> KvEntry:
    return KvEntry(kind, key, bytes(kv.value), int(kv.mod_revision), int(kv.create_revision))


def _mismatch(kind: str, key: str, expected: int, current: Any | None) -> KvError:
    if current is None:
        return KeyNotFound(kind, key)
    return RevisionConflict(kind, key, expected, int(current.mod_revision))


def _refusal(op: CreateOp | UpdateOp, current: Any | None) -> KvError | None:
    """Why ``op`` cannot be written over ``current`` (the key's revisions, None if absent);
    None if its condition holds."""
    if isinstance(op, CreateOp):
        return None if current is None else KeyExists(op.kind, op.key)
    if current is not None and int(current.mod_revision) == op.expected_revision:
        return None
    return _mismatch(op.kind, op.key, op.expected_revision, current)


def _owner_refusal(
    kind: str, key: str, expected_revision: int | None, current: Any | None
) -> KvError | None:
    """Why deleting the owner failed for good; None if another try may succeed."""
    if current is None:
        return KeyNotFound(kind, key)
    if expected_revision is not None and int(current.mod_revision) != expected_revision:
        return RevisionConflict(kind, key, expected_revision, int(current.mod_revision))
    return None


def _first(range_response: Any) -> Any | None:
    return range_response.kvs[0] if range_response.kvs else None


def _owned_tree(children: dict[ObjectId, list[ObjectId]], owner: ObjectId) -> list[ObjectId]:
    """Everything ``owner`` owns, directly or not, each object after everything it owns."""
    order: list[ObjectId] = []
    seen = {owner}
    stack: list[tuple[ObjectId, Iterator[ObjectId]]] = [
        (owner, iter(sorted(children.get(owner, []))))
    ]
    while stack:
        node, pending = stack[-1]
        child = next(pending, None)
        if child is None:
            stack.pop()
            if node != owner:
                order.append(node)
        elif child not in seen:
            seen.add(child)
            stack.append((child, iter(sorted(children.get(child, [])))))
    return order


# etcd request builders


def range_end(prefix: bytes) -> bytes:
    """The etcd range end that covers every key starting with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return b"\0"  # every key
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


_RESULTS = {
    "==": etcdrpc.Compare.EQUAL,
    "!=": etcdrpc.Compare.NOT_EQUAL,
    "<": etcdrpc.Compare.LESS,
    ">": etcdrpc.Compare.GREATER,
}
_TARGETS = {
    "version": etcdrpc.Compare.VERSION,
    "create_revision": etcdrpc.Compare.CREATE,
    "mod_revision": etcdrpc.Compare.MOD,
}


def _compare(key: bytes, result: str, *, until: bytes = b"", **target: int) -> Any:
    """``target`` of ``key`` (of every key in [key, until) if given) ``result`` a value."""
    ((field, value),) = target.items()
    return etcdrpc.Compare(
        key=key,
        range_end=until,
        result=_RESULTS[result],
        target=_TARGETS[field],
        **{field: value},
    )


def _version(key: bytes, result: str, version: int) -> Any:
    return _compare(key, result, version=version)


def _mod(key: bytes, revision: int) -> Any:
    return _compare(key, "==", mod_revision=revision)


def _put(key: bytes, value: bytes) -> Any:
    return etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=key, value=value))


def _delete(key: bytes) -> Any:
    return etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(key=key))


def _range(key: bytes, *, keys_only: bool = False) -> Any:
    return etcdrpc.RequestOp(request_range=etcdrpc.RangeRequest(key=key, keys_only=keys_only))
