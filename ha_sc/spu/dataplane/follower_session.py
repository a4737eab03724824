"""A follower SPU replicating every partition it follows from one leader SPU in one
fetch session (``session_book.py`` keeps what the leader was told; the leader's side is
``leader_session.py``).

One loop per leader SPU, over the one ``LeaderLink`` to it. Each fetch tells the leader
what changed since the last (partitions added in full, offsets that moved, partitions
removed); the answer brings records, HW moves and errors for the partitions that have
any. Records are appended on the I/O threads, every partition of an answer at once (one
fsync per partition per answer), and the follower's HW becomes the lesser of the
leader's and its own LEO; then the next fetch goes out with the new offsets, which is
what moves the leader's HW and ISR. While a fetch waits at the leader, a partition added
sends another fetch at once (the leader then ends the wait of the first): a new
partition or one promoted elsewhere does not wait for an idle session's round.

A partition the leader answers with an error is held and told again after a back-off
(0.05 s doubling to 1 s), as a single fetch loop retried; the others go on. An answer
about a partition from a fetch sent before it was (re)added is dropped. A broken
connection, an answer past its wait, or a leader that lost the session opens a new
session, in full, after a back-off. An idle session's wait doubles (from
``replica_wait_ms`` to ``replica_idle_wait_ms``) each time a whole wait passes with
nothing new; anything new brings it back.

``remove`` waits for a partition's append in flight to finish: once it returns nothing
from this leader touches that replica again (the registry then cuts it or hands it to
another leader's session).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Coroutine

from ha_sc.protocol.data import ErrorCode, ReplicaSessionFetch, ReplicaSessionResult
from ha_sc.protocol.fetch_session import (
    MalformedSessionBody,
    PartitionAnswer,
    decode_answers,
    encode_changes,
)
from ha_sc.spu.dataplane.follower import append_fetched
from ha_sc.spu.dataplane.link import LeaderLink, LinkDown
from ha_sc.spu.dataplane.replica import Replica
from ha_sc.spu.dataplane.session_book import Member, SessionBook
from ha_sc.spu.dataplane.truncation import Gap, cut_for_shorter_leader
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from ha_sc.spu.storage import MalformedBatch, StorageError

log = logging.getLogger("ha_sc.spu.dataplane")

BACKOFF_INITIAL = 0.05
BACKOFF_MAX = 1.0
ANSWER_SLACK = 5.0
"""Seconds past ``wait_ms`` before a fetch with no answer counts as lost."""

Sent = tuple[int, bool, "asyncio.Task[tuple[ReplicaSessionResult, bytes]]"]
"""A fetch in flight: its number, whether it was sent to end another's wait, its task."""


class FollowerSession:
    """Replicates the partitions added to it from leader SPU ``leader`` over ``link``."""

    def __init__(
        self,
        spu_id: int,
        leader: int,
        link: LeaderLink,
        settings: DataPlaneSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spu_id = spu_id
        self.leader = leader
        self._link = link
        self._settings = settings
        self._clock = clock
        self._book = SessionBook()
        self._replicas: dict[str, Replica] = {}
        self._applying: dict[str, asyncio.Task[None]] = {}
        self._problems: dict[str, str] = {}
        self._news = asyncio.Event()
        self.fetches = 0
        """Answers taken (for tests and the benchmark)."""
        self.wait_ms = settings.replica_wait_ms
        """What the next fetch waits at the leader (longer while every partition is idle)."""

    def __len__(self) -> int:
        return len(self._replicas)

    def add(self, replica: Replica) -> None:
        """Follow ``replica`` from this leader, from its LEO."""
        self._replicas[replica.key] = replica
        self._book.add(replica.key, replica.generation)
        self._problems.pop(replica.key, None)
        self._news.set()

    async def remove(self, key: str) -> None:
        """Stop following ``key``; returns once nothing of this session touches it."""
        self._replicas.pop(key, None)
        self._book.remove(key)
        self._problems.pop(key, None)
        applying = self._applying.get(key)
        if applying is not None:
            await asyncio.wait({applying})

    async def run(self) -> None:
        delay = BACKOFF_INITIAL
        trouble: str | None = None
        while True:
            answered = self.fetches
            problem = await self._exchange()
            if self.fetches != answered:
                delay, trouble = BACKOFF_INITIAL, None  # it worked for a while
            if problem != trouble:
                log.info("fetch session with spu %d: %s; retrying", self.leader, problem)
                trouble = problem
            self._book.reset()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _exchange(self) -> str:
        """Fetch until something breaks the session; what broke it."""
        in_flight: collections.deque[Sent] = collections.deque()
        try:
            while True:
                if not in_flight:
                    if self._book.idle:
                        self._news.clear()
                        await self._news.wait()
                        continue
                    in_flight.append(self._send(superseding=False))
                elif len(in_flight) == 1 and self._book.urgent and self._book.session:
                    in_flight.append(self._send(superseding=True))
                number, _, task = in_flight[0]
                if not task.done():
                    await self._wait(task)
                    continue
                in_flight.popleft()
                try:
                    response, body = task.result()
                except LinkDown as exc:
                    return str(exc)
                except TimeoutError:
                    return f"no answer from spu {self.leader}"
                problem = await self._take(number, response, body, superseded=bool(in_flight))
                if problem is not None:
                    return problem
        finally:
            for _, _, task in in_flight:
                task.cancel()
            await asyncio.gather(*(task for _, _, task in in_flight), return_exceptions=True)

    async def _wait(self, task: asyncio.Task[tuple[ReplicaSessionResult, bytes]]) -> None:
        """Until ``task`` is answered, a partition is added, or a held one is due."""
        self._news.clear()
        news = asyncio.create_task(self._news.wait(), name=f"session news from spu {self.leader}")
        release = self._book.next_release()
        timeout = None if release is None else max(0.0, release - self._clock())
        try:
            await asyncio.wait({task, news}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            news.cancel()
        self._book.release_due(self._clock())

    def _send(self, *, superseding: bool) -> Sent:
        book = self._book
        replicas = self._replicas
        number, changes = book.next_fetch(lambda key: replicas[key].leo)
        # a new session's first fetch does not wait: until it is answered no other fetch
        # can name the session (and so end a wait), e.g. to tell a held partition again
        wait_ms = self.wait_ms if book.session else 0
        request = ReplicaSessionFetch(
            id=0,
            follower=self._spu_id,
            session=book.session,
            max_bytes=self._settings.max_fetch_bytes,
            partition_max_bytes=self._settings.replica_fetch_bytes,
            wait_ms=wait_ms,
        )
        task = asyncio.create_task(
            self._link.session_fetch(
                request, encode_changes(changes), timeout=wait_ms / 1000 + ANSWER_SLACK
            ),
            name=f"session fetch {number} from spu {self.leader}",
        )
        return number, superseding, task

    async def _take(
        self, number: int, response: ReplicaSessionResult, body: bytes, *, superseded: bool
    ) -> str | None:
        """Apply the answer to fetch ``number``; a problem that ends the session, or None."""
        error = response.error
        if error is not None:
            if error.code is ErrorCode.UNKNOWN_SESSION:
                return f"spu {self.leader} lost the fetch session"
            return f"spu {self.leader} answers {error.code}: {error.message}"
        try:
            answers = decode_answers(body)
        except MalformedSessionBody as exc:
            return f"bad session answer from spu {self.leader}: {exc}"
        self._book.session = response.session
        self.fetches += 1
        now = self._clock()
        appends: list[asyncio.Task[None]] = []
        news = False
        for answer in answers:
            member = self._book.accepts(answer.key, number)
            if member is None:
                continue
            replica = self._replicas[answer.key]
            news = True  # the leader answers only partitions with something new
            if answer.error is not None:
                if answer.error.code is ErrorCode.OFFSET_OUT_OF_RANGE:
                    cutting = self._out_of_range(replica, member, answer)
                    appends.append(self._start(replica, cutting))
                else:
                    refused = answer.error
                    self._trouble(
                        replica, f"spu {self.leader} answers {refused.code}: {refused.message}"
                    )
                    self._book.hold(member, now)
                continue
            self._book.answered(member)
            self._recovered(replica)
            if answer.data:
                if answer.offset == replica.leo:
                    appends.append(self._start(replica, self._append(replica, member, answer)))
            else:
                replica.set_hw(min(answer.hw, replica.leo))
        if appends:
            await asyncio.wait(appends)
        if news:
            self.wait_ms = self._settings.replica_wait_ms
        elif not superseded:  # the whole wait passed with nothing new: every partition idle
            settings = self._settings
            self.wait_ms = min(2 * self.wait_ms, max(settings.replica_idle_wait_ms, self.wait_ms))
        return None

    def _start(self, replica: Replica, work: Coroutine[None, None, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=f"replicate {replica.key} from spu {self.leader}")
        self._applying[replica.key] = task
        task.add_done_callback(lambda done: self._applied(replica.key, done))
        return task

    def _applied(self, key: str, task: asyncio.Task[None]) -> None:
        if self._applying.get(key) is task:
            del self._applying[key]
        if not task.cancelled() and task.exception() is not None:
            log.error("replicating %s failed", key, exc_info=task.exception())

    def _current(self, replica: Replica, member: Member) -> bool:
        """``replica`` is still followed here as ``member``."""
        return (
            self._replicas.get(replica.key) is replica
            and self._book.members.get(replica.key) is member
        )

    async def _append(self, replica: Replica, member: Member, answer: PartitionAnswer) -> None:
        body, leader_hw = answer.data, answer.hw
        try:
            hw = await replica.mutate(
                lambda current: append_fetched(replica, current, body, leader_hw)
            )
        except (MalformedBatch, Gap) as exc:
            self._trouble(replica, f"bad batches from spu {self.leader}: {exc}")
            if self._current(replica, member):
                self._book.hold(member, self._clock())
            return
        except (OSError, StorageError) as exc:
            log.warning("replica %s: cannot append what the leader sent: %s", replica.key, exc)
            self._trouble(replica, f"storage error: {exc}")
            if self._current(replica, member):
                self._book.hold(member, self._clock())
            return
        if self._current(replica, member):
            replica.set_hw(hw)
            self._book.moved(replica.key)

    async def _out_of_range(
        self, replica: Replica, member: Member, answer: PartitionAnswer
    ) -> None:
        cut = cut_for_shorter_leader(replica.hw, replica.leo, answer.leo)
        if cut is not None:
            log.warning(
                "replica %s: the log ends at %d, the leader's at %d; cutting to %d",
                replica.key,
                replica.leo,
                answer.leo,
                cut,
            )
            try:
                await replica.cut(cut)
            except (OSError, StorageError) as exc:
                self._trouble(replica, f"cannot cut the log: {exc}")
                if self._current(replica, member):
                    self._book.hold(member, self._clock())
                return
            if self._current(replica, member):
                self._book.hold(member, self._clock(), at_once=True)
            return
        if replica.leo < answer.log_start:
            problem = (
                f"the log ends at {replica.leo}, before the leader's log start "
                f"{answer.log_start} (retention): cannot catch up"
            )
        else:
            problem = f"offset {replica.leo} out of the leader's range"
        self._trouble(replica, problem)
        if self._current(replica, member):
            self._book.hold(member, self._clock())

    def _trouble(self, replica: Replica, problem: str) -> None:
        if self._problems.get(replica.key) != problem:
            log.info("replica %s: %s; retrying", replica.key, problem)
            self._problems[replica.key] = problem

    def _recovered(self, replica: Replica) -> None:
        if self._problems.pop(replica.key, None) is not None:
            log.info("replica %s: replicating from spu %d again", replica.key, self.leader)
