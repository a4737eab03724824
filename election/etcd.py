"""etcd election backend: a leader key bound to a lease; its create revision is the epoch.

Each candidate holds an etcd lease of ``lease_ttl`` whole seconds and renews it
every ``renew_interval``. It campaigns with one transaction that creates the
election's leader key, bound to that lease, only if the key is absent; the key's
create revision is the epoch, so every win has an epoch greater than all before
it, also after etcd restarts. A candidate that did not win watches the key from
the revision it read and campaigns again the moment the key is deleted (released,
or gone with an expired lease).

The holder counts its term valid for ``renew_deadline`` from when its last
successful renewal was sent (the Leadership watchdog ends it then). etcd keeps
the lease, and so the key, at least ``lease_ttl`` from that same moment; since
``lease_ttl > renew_deadline`` the holder stops acting before another candidate
can win. A holder whose term ended while its key lives on (etcd was slow or
unreachable) deletes that key and campaigns afresh, so no epoch is ever reused.

Resigning deletes the key at once, guarded by its create revision; the resigner
then stands back for ``lease_ttl`` so a watching standby takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from election.etcd_access import PLAIN, EtcdCredentials
from election.etcd_client import (
    ElectionClient,
    EtcdUnreachable,
    KeyState,
    LeaderKey,
    LeaseGone,
    claim_value,
)
from election.etcd_keys import DEFAULT_ROOT, leader_key
from election.leadership import Leadership
from election.term import LeaderInfo, Term
from election.timing import ElectionTiming

log = logging.getLogger("election.etcd")

T = TypeVar("T")

DEFAULT_ETCD_TIMING = ElectionTiming(
    lease_ttl=2.0, renew_deadline=1.5, renew_interval=0.25, retry_period=0.25
)
"""etcd grants whole seconds, and lengthens a TTL below 1.5 x its election timeout."""
WATCH_WINDOW = 3.0
"""Longest a watch stays open; the candidate then reads the key again (level-triggered)."""
RETRY_BACKOFF_MAX = 0.5
"""Longest pause between campaign attempts while etcd is unreachable."""


@dataclass(slots=True)
class _Lease:
    id: int
    fresh_since: float
    """Monotonic send time of the last grant or renewal etcd accepted: the lease lives
    at least ``lease_ttl`` beyond it."""
    last_sent: float


class EtcdCandidate:
    """A candidate in one election, campaigning on the etcd cluster at ``endpoints``."""

    def __init__(
        self,
        endpoints: list[str],
        *,
        election: str,
        name: str,
        address: str,
        root: str = DEFAULT_ROOT,
        timing: ElectionTiming = DEFAULT_ETCD_TIMING,
        credentials: EtcdCredentials = PLAIN,
    ) -> None:
        self.election = election
        self.name = name
        self.address = address
        self.timing = timing
        self.key = leader_key(election, root)
        self.leadership = Leadership(election, name, timing)
        self._ttl = whole_seconds(timing.lease_ttl)
        self._client = ElectionClient(
            endpoints, request_timeout=request_timeout(timing), credentials=credentials
        )
        self._value = claim_value(name, address)
        self._lease: _Lease | None = None
        self._term_lease = 0
        self._observed: LeaderInfo | None = None
        self._standing_back_until = 0.0
        self._unreachable_since: float | None = None
        self._poke = asyncio.Event()  # wakes the campaign
        self._lease_wanted = asyncio.Event()  # wakes the lease keeper
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self._closed = False

    @property
    def term(self) -> Term | None:
        return self.leadership.term

    async def wait_won(self) -> Term:
        return await self.leadership.wait_won()

    def leader(self) -> LeaderInfo | None:
        return self._observed

    async def run(self) -> None:
        if self._closed:
            return
        if self._running:
            raise RuntimeError(f"candidate {self.name} of {self.election} is already running")
        self._running = True
        try:
            async with asyncio.TaskGroup() as tasks:
                watchdog = tasks.create_task(
                    self.leadership.watchdog(), name=f"election-watchdog-{self.name}"
                )
                keeper = tasks.create_task(self._keep_lease(), name=f"election-lease-{self.name}")
                try:
                    await self._campaign()
                finally:
                    keeper.cancel()
                    watchdog.cancel()
        finally:
            await self._wind_down()

    async def resign(self) -> None:
        self._standing_back_until = time.monotonic() + self.timing.lease_ttl
        term = self.leadership.held
        if term is None:
            return
        self._lose("resigned")
        self._poke.set()
        try:
            released = await self._call(self._client.release(self.key, term.epoch))
        except (EtcdUnreachable, LeaseGone) as error:
            log.warning(
                "%s could not release %s epoch=%d (%s); it expires with the lease",
                self.name,
                self.election,
                term.epoch,
                error,
            )
            return
        if released:
            log.info("%s released %s epoch=%d", self.name, self.election, term.epoch)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.resign()
        self._stopping.set()
        self._poke.set()
        if self._running:
            await self._stopped.wait()
        await self._client.close()

    # the campaign: claim, observe, watch

    async def _campaign(self) -> None:
        backoff = self.timing.retry_period
        while not self._stopping.is_set():
            self._poke.clear()
            try:
                await self._step()
            except (EtcdUnreachable, LeaseGone) as error:
                self._report_unreachable(error)
                await self._pause(backoff)
                backoff = min(backoff * 2, max(RETRY_BACKOFF_MAX, self.timing.retry_period))
            else:
                backoff = self.timing.retry_period

    async def _step(self) -> None:
        term = self.leadership.held
        if term is None:
            state = await self._claim_or_read()
            term = self.leadership.held
        else:
            state = await self._call(self._client.read(self.key))
        self._observe(state)
        if term is not None:
            if not _still_ours(term, state.key):
                self._lose("leader key deleted")
                return
            await self._await_change(state, term, WATCH_WINDOW)
        elif state.key is not None and self._is_own(state.key):
            await self._release_stale(state.key)
        else:
            await self._await_change(state, None, self._standby_window())

    async def _claim_or_read(self) -> KeyState:
        lease = self._campaign_lease()
        if lease is None:
            return await self._call(self._client.read(self.key))
        try:
            claim = await self._call(self._client.claim(self.key, self._value, lease.id))
        except LeaseGone:
            self._drop_lease(lease, "lease lost")
            return await self._call(self._client.read(self.key))
        key = claim.state.key
        if claim.won and key is not None and self._may_win(lease):
            self._term_lease = lease.id
            self.leadership.win(key.create_revision, lease.fresh_since)
        return claim.state

    async def _await_change(self, state: KeyState, term: Term | None, window: float) -> None:
        """Wait until the key changes after ``state``, the term ends, or the candidate is poked."""
        changed = asyncio.create_task(
            self._client.next_change(self.key, state.revision + 1, window),
            name=f"election-watch-{self.name}",
        )
        wakers = [asyncio.create_task(self._poke.wait(), name=f"election-poked-{self.name}")]
        if term is not None:
            wakers.append(asyncio.create_task(term.lost.wait(), name=f"term-lost-{self.name}"))
        try:
            await asyncio.wait([changed, *wakers], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [changed, *wakers]:
                task.cancel()
            await asyncio.wait([changed, *wakers])
        if changed.cancelled():
            return
        change = changed.result()  # EtcdUnreachable goes to the campaign's retry
        if change is None:
            return
        self._observe(change)
        if term is not None and not _still_ours(term, change.key):
            self._lose("leader key deleted")

    async def _release_stale(self, key: LeaderKey) -> None:
        """Our lease still holds the key of a term that ended: free it to campaign afresh."""
        log.info(
            "%s releases the leader key of %s epoch=%d left by a term that ended",
            self.name,
            self.election,
            key.create_revision,
        )
        await self._call(self._client.release(self.key, key.create_revision))

    def _campaign_lease(self) -> _Lease | None:
        """The lease to campaign with, if campaigning is allowed and the lease is fresh enough
        that a term won with it starts valid."""
        lease = self._lease
        if lease is None or self._closed or self._standing_back():
            return None
        age = time.monotonic() - lease.fresh_since
        if age >= self.timing.renew_deadline - self._client.request_timeout:
            return None
        return lease

    def _may_win(self, lease: _Lease) -> bool:
        return (
            self._lease is lease
            and not self._closed
            and not self._standing_back()
            and not self._stopping.is_set()
        )

    def _is_own(self, key: LeaderKey) -> bool:
        return self._lease is not None and key.lease == self._lease.id

    def _standing_back(self) -> bool:
        return time.monotonic() < self._standing_back_until

    def _standby_window(self) -> float:
        if self._standing_back():
            return max(0.01, min(WATCH_WINDOW, self._standing_back_until - time.monotonic()))
        if self._lease is not None and self._campaign_lease() is None:
            return self.timing.retry_period  # wait for a renewal to make the lease fresh again
        return WATCH_WINDOW  # the lease keeper pokes when it grants a lease

    def _observe(self, state: KeyState) -> None:
        key = state.key
        if key is None:
            self._observed = None
        else:
            candidate, address = key.holder()
            self._observed = LeaderInfo(candidate, address, key.create_revision)

    def _lose(self, reason: str) -> None:
        self._term_lease = 0
        self.leadership.lose(reason)

    # the lease: grant, renew, replace when lost

    async def _keep_lease(self) -> None:
        backoff = self.timing.retry_period
        while True:
            lease = self._lease
            if lease is None:
                try:
                    self._lease = await self._grant()
                except EtcdUnreachable as error:
                    self._report_unreachable(error)
                    await self._rest(backoff)
                    backoff = min(backoff * 2, max(RETRY_BACKOFF_MAX, self.timing.retry_period))
                    continue
                backoff = self.timing.retry_period
                self._poke.set()
                continue
            await self._rest(lease.last_sent + self.timing.renew_interval - time.monotonic())
            if self._lease is lease:
                await self._renew(lease)

    async def _grant(self) -> _Lease:
        sent = time.monotonic()
        lease_id, granted = await self._call(self._client.grant(self._ttl))
        if granted != self._ttl:
            log.info(
                "election %s: etcd granted %s a %ds lease instead of %ds",
                self.election,
                self.name,
                granted,
                self._ttl,
            )
        return _Lease(lease_id, fresh_since=sent, last_sent=sent)

    async def _renew(self, lease: _Lease) -> None:
        sent = lease.last_sent = time.monotonic()
        try:
            ttl = await self._call(self._client.refresh(lease.id))
        except EtcdUnreachable as error:
            self._report_unreachable(error)
            return
        except LeaseGone:
            ttl = 0
        if self._lease is not lease:
            return
        if ttl <= 0:
            self._drop_lease(lease, "lease lost")
            return
        lease.fresh_since = max(lease.fresh_since, sent)
        if self._term_lease == lease.id:
            self.leadership.renewed(sent)

    def _drop_lease(self, lease: _Lease, reason: str) -> None:
        if self._lease is not lease:
            return
        self._lease = None
        log.info("election %s: %s's lease expired; granting a new one", self.election, self.name)
        if self._term_lease == lease.id:
            self._lose(reason)
        self._lease_wanted.set()
        self._poke.set()

    # helpers

    async def _wind_down(self) -> None:
        self._lose("candidate stopped")
        lease, self._lease = self._lease, None
        if lease is not None:
            with contextlib.suppress(EtcdUnreachable, LeaseGone, RuntimeError):
                await self._call(self._client.revoke(lease.id))
        self._stopped.set()

    async def _call(self, call: Awaitable[T]) -> T:
        result = await call
        self._report_reachable()
        return result

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._poke.wait()

    async def _rest(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._lease_wanted.wait()
        self._lease_wanted.clear()

    def _report_unreachable(self, error: Exception) -> None:
        first = self._unreachable_since is None
        if first:
            self._unreachable_since = time.monotonic()
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "election %s: etcd unreachable (%s at %s: %s); retrying",
            self.election,
            self.name,
            self._client.endpoint,
            error,
        )

    def _report_reachable(self) -> None:
        since = self._unreachable_since
        if since is not None:
            self._unreachable_since = None
            log.info(
                "election %s: etcd reachable again for %s after %.2fs",
                self.election,
                self.name,
                time.monotonic() - since,
            )


def whole_seconds(lease_ttl: float) -> int:
    """etcd grants leases in whole seconds. A fractional TTL is refused rather than
    rounded up, which would lengthen every failover without the operator noticing."""
    if lease_ttl != int(lease_ttl):
        raise ValueError(
            f"etcd grants leases in whole seconds: lease_ttl must be a whole number of "
            f"seconds, got {lease_ttl}s"
        )
    return int(lease_ttl)


def request_timeout(timing: ElectionTiming) -> float:
    """Deadline of each etcd call: three renewal attempts fit in one renew deadline."""
    return max(timing.renew_interval, timing.renew_deadline / 3)


def _still_ours(term: Term, key: LeaderKey | None) -> bool:
    return key is not None and key.create_revision == term.epoch
