"""Raft election backend: leases granted, renewed and expired by the replicated lease table.

Each SC replica hosts a Raft node carrying the lease table. The holder renews by
committing a ``renew`` command, and counts its lease valid for ``renew_deadline``
from when that command was sent. The Raft leader expires a lease that went
``lease_ttl`` without a renewal, counted on its own monotonic clock from when the
last renewal's entry arrived on its node (election/raft_lease.py): after a crash
of a holder that also led Raft, the new Raft leader counts from before its own
election. It expires the lease and grants it to its own candidate in one command
(``take_over``), refused if a renewal was applied since the one it counted from.
Since ``lease_ttl > renew_deadline``, the holder has stopped acting by then, also
when it is cut off from the majority (pysyncobj would keep it Raft leader for 30 s;
its renewals cannot commit, so its deadline ends its term).

Graceful resignation hands the lease to a connected standby in one command
(``transfer``); the successor acts once its first renewal commits.

A candidate may be told it is not ready to lead yet (``ready``: the SC replica's cache is
still being listed after a start). It then defers to one that is: it does not enlist (so
no handover picks it), on the Raft leader's node it only expires a silent lease instead
of taking it, and it claims a free lease only after ``COLD_GRACE``, if no other did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from election.leadership import Leadership
from election.lease_table import Enlisted, LeaseHolder
from election.raft_node import CommandNotCommitted, RaftLeaseHost
from election.term import LeaderInfo, Term
from election.timing import ElectionTiming

log = logging.getLogger("election.raft")

DEFAULT_TIMING = ElectionTiming(
    lease_ttl=0.8, renew_deadline=0.55, renew_interval=0.1, retry_period=0.05
)
FOLLOWER_GRACE = 0.03
"""A candidate whose node is not the Raft leader waits this long before claiming a free
lease, so the Raft leader's own candidate (whose commands commit fastest) usually wins."""


COLD_GRACE = 0.3
"""A candidate not ready to lead waits this long after finding the lease free before it
claims it: a ready standby (which waits at most ``FOLLOWER_GRACE``) claims it first."""


EXPIRY_SLACK = 0.001
"""A Raft leader wakes this long after a silent lease's expiry to take it over (a timer
may fire a hair early)."""


HANDOVER_LINGER = 0.05
"""After the successor's first renewal commits, a resigning replica keeps its Raft node up
this much longer: if it is the Raft leader, the successor's node learns of the commit on
the next append-entries, instead of after a Raft election."""


class RaftCandidate:
    """A candidate in one election, on the Raft node ``host``."""

    def __init__(
        self,
        host: RaftLeaseHost,
        *,
        election: str,
        name: str,
        address: str,
        timing: ElectionTiming = DEFAULT_TIMING,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        """``ready()``: whether this candidate could lead at once (read on the campaign's
        thread, so a cheap, thread-safe look)."""
        self.host = host
        self.election = election
        self.name = name
        self.address = address
        self.timing = timing
        self.leadership = Leadership(election, name, timing)
        self.incarnation = uuid.uuid4().hex[:12]
        self._closing = asyncio.Event()
        self._wake = asyncio.Event()
        self._last_renew_sent = 0.0
        self._ready = ready
        self._enlisted = False

    @property
    def term(self) -> Term | None:
        return self.leadership.term

    async def wait_won(self) -> Term:
        return await self.leadership.wait_won()

    def leader(self) -> LeaderInfo | None:
        holder = self.host.leases.holder(self.election)
        if holder is None:
            return None
        return LeaderInfo(holder.candidate, holder.address, holder.epoch)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            watchdog = tasks.create_task(
                self.leadership.watchdog(), name=f"election-watchdog-{self.name}"
            )
            try:
                with self.host.leases.changed.subscribe() as changed:
                    self._wake = changed
                    while not self._closing.is_set():
                        changed.clear()
                        if not self._enlisted and self._ready():
                            await self._enlist()
                        await self._step()
                        await self._pause(changed)
            finally:
                watchdog.cancel()

    async def resign(self) -> None:
        term = self.leadership.held
        if term is None:
            return
        self.leadership.lose("resigned")
        successor = self._successor()
        try:
            if successor is not None:
                holder = await self._command(
                    self.host.leases.transfer,
                    self.election,
                    term.epoch,
                    successor.candidate,
                    successor.address,
                    successor.incarnation,
                )
                log.info("%s handed %s to %s", self.name, self.election, successor.candidate)
                if holder is not None:
                    await self._until_confirmed(holder.epoch)
            else:
                await self._command(self.host.leases.release, self.election, term.epoch)
                log.info("%s released %s (no connected standby)", self.name, self.election)
                await self._until_taken(term.epoch)
        except CommandNotCommitted as failed:
            log.warning("%s could not hand over %s: %s", self.name, self.election, failed)

    async def _until_confirmed(self, epoch: int) -> None:
        """Stay (and keep this Raft node serving) until the successor's first renewal
        commits, so a departing Raft leader does not stall the handover."""
        leases = self.host.leases
        with contextlib.suppress(TimeoutError), leases.changed.subscribe() as changed:
            async with asyncio.timeout(self.timing.lease_ttl):
                while leases.confirmed.get(self.election, 0) < epoch:
                    changed.clear()
                    await changed.wait()
                # committed here; the successor's node learns it on the next append-entries
                await asyncio.sleep(HANDOVER_LINGER)

    async def _until_taken(self, epoch: int) -> None:
        """After a release, stay until another candidate holds the lease (bounded)."""
        leases = self.host.leases

        def taken() -> bool:
            holder = leases.holder(self.election)
            return holder is not None and holder.epoch > epoch

        with contextlib.suppress(TimeoutError), leases.changed.subscribe() as changed:
            async with asyncio.timeout(self.timing.lease_ttl):
                while not taken():
                    changed.clear()
                    await changed.wait()

    async def close(self) -> None:
        await self.resign()
        self._closing.set()
        self._wake.set()

    # one pass of the campaign

    async def _step(self) -> None:
        holder = self.host.leases.holder(self.election)
        term = self.leadership.held
        if term is not None:
            await self._lead(term, holder)
        elif holder is None:
            await self._claim()
        elif holder.candidate == self.name and holder.incarnation == self.incarnation:
            await self._confirm(holder)
        elif holder.candidate == self.name and self._ready():
            await self._reclaim(holder)
        elif self.host.is_raft_leader():
            await self._take_over_if_silent(holder)

    async def _lead(self, term: Term, holder: LeaseHolder | None) -> None:
        if holder is None or holder.epoch != term.epoch:
            self.leadership.lose("the lease table shows another holder")
            return
        if time.monotonic() - self._last_renew_sent < self.timing.renew_interval:
            return
        sent = self._last_renew_sent = time.monotonic()
        try:
            # a renewal lost with a departing Raft leader is retried well before the deadline
            current = await self._command(
                self.host.leases.renew,
                self.election,
                term.epoch,
                deadline=min(term.valid_until, sent + 2 * self.timing.renew_interval),
            )
        except CommandNotCommitted as failed:
            log.debug("%s renewal not committed: %s", self.name, failed)
            return
        if current:
            self.leadership.renewed(sent)
        else:
            self.leadership.lose("lease expired or taken over")

    async def _claim(self) -> None:
        if not self._ready():
            await asyncio.sleep(COLD_GRACE)
            if self.host.leases.holder(self.election) is not None:
                return
        elif not self.host.is_raft_leader():
            await asyncio.sleep(FOLLOWER_GRACE)
            if self.host.leases.holder(self.election) is not None:
                return
        sent = time.monotonic()
        try:
            holder = await self._command(
                self.host.leases.acquire, self.election, self.name, self.address, self.incarnation
            )
        except CommandNotCommitted as failed:
            log.debug("%s claim not committed: %s", self.name, failed)
            return
        if holder is not None and holder.candidate == self.name:
            self._last_renew_sent = sent
            self.leadership.win(holder.epoch, sent)

    async def _confirm(self, holder: LeaseHolder) -> None:
        """The table names us (a handover, or a lease from before a restart): renew first."""
        sent = time.monotonic()
        try:
            current = await self._command(self.host.leases.renew, self.election, holder.epoch)
        except CommandNotCommitted:
            return
        if current:
            self._last_renew_sent = sent
            self.leadership.win(holder.epoch, sent)

    async def _reclaim(self, held_before: LeaseHolder) -> None:
        """The table names our previous run: take the lease again under a new epoch."""
        sent = time.monotonic()
        try:
            holder = await self._command(
                self.host.leases.transfer,
                self.election,
                held_before.epoch,
                self.name,
                self.address,
                self.incarnation,
            )
        except CommandNotCommitted:
            return
        if holder is not None:
            log.info(
                "%s took over the lease its previous run held (epoch %d)",
                self.name,
                held_before.epoch,
            )
            self._last_renew_sent = sent
            self.leadership.win(holder.epoch, sent)

    async def _take_over_if_silent(self, holder: LeaseHolder) -> None:
        """On the Raft leader: once the holder went ``lease_ttl`` without a renewal
        reaching this node, expire its lease and take it, in one command (only expire
        it while closing or not ready to lead: then a ready standby claims it)."""
        silence = self.host.leases.silence(self.election)
        if silence is None or silence.epoch != holder.epoch:
            return
        silent = silence.seconds(time.monotonic())
        if silent <= self.timing.lease_ttl:
            return
        sent = time.monotonic()
        try:
            if self._closing.is_set() or not self._ready():
                taken = None
                expired = await self._command(
                    self.host.leases.expire, self.election, holder.epoch, silence.renewals
                )
            else:
                taken = await self._command(
                    self.host.leases.take_over,
                    self.election,
                    holder.epoch,
                    silence.renewals,
                    self.name,
                    self.address,
                    self.incarnation,
                )
                expired = taken is not None
        except CommandNotCommitted as failed:
            log.debug("%s expiry not committed: %s", self.name, failed)
            return
        if not expired:
            return  # renewed meanwhile, or taken by another
        log.info(
            "lease of %s epoch=%d held by %s expired after %.2fs without renewal",
            self.election,
            holder.epoch,
            holder.candidate,
            silent,
        )
        if taken is not None and taken.candidate == self.name:
            self._last_renew_sent = sent
            self.leadership.win(taken.epoch, sent)

    # helpers

    async def _enlist(self) -> None:
        while not self._closing.is_set():
            try:
                await self._command(
                    self.host.leases.enlist,
                    self.election,
                    self.name,
                    self.address,
                    self.host.address,
                    self.incarnation,
                )
                self._enlisted = True
                return
            except CommandNotCommitted:
                await asyncio.sleep(self.timing.retry_period)

    def _successor(self) -> Enlisted | None:
        """A connected standby: the one on the Raft leader's node if any (its renewals
        commit fastest), else the one enlisted longest (a just-restarted node may still
        be catching up on the log)."""
        standbys = [
            e
            for e in self.host.leases.enlisted(self.election)
            if e.candidate != self.name and self.host.is_connected(e.raft_address)
        ]
        raft_leader = self.host.raft_leader()
        for enlisted in standbys:
            if enlisted.raft_address == raft_leader:
                return enlisted
        return standbys[0] if standbys else None

    async def _command(
        self, method: Callable[..., Any], *args: Any, deadline: float | None = None
    ) -> Any:
        timeout = self.timing.renew_deadline
        if deadline is not None:
            timeout = max(0.01, min(timeout, deadline - time.monotonic()))
        return await self.host.submit_lease(method, *args, timeout=timeout)

    async def _pause(self, changed: asyncio.Event) -> None:
        wait = self.timing.retry_period
        if self.leadership.held is not None:
            wait = max(0.0, self._last_renew_sent + self.timing.renew_interval - time.monotonic())
        else:
            wait = min(wait, self._until_expiry())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await changed.wait()

    def _until_expiry(self) -> float:
        """On the Raft leader, seconds until the holder's lease may be expired (the
        check runs then, not up to a retry period later); infinite elsewhere."""
        if not self.host.is_raft_leader():
            return float("inf")
        silence = self.host.leases.silence(self.election)
        if silence is None:
            return float("inf")
        return max(0.0, silence.since + self.timing.lease_ttl - time.monotonic()) + EXPIRY_SLACK
