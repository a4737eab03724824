"""EtcdCandidate against a real etcd on loopback: win, hand over, renew deadline, crash."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType

import pytest

from election.etcd import DEFAULT_ETCD_TIMING, EtcdCandidate
from election.etcd_client import ElectionClient, KeyState
from election.term import LeaderInfo, Term
from election.timing import ElectionTiming
from tests.etcd_server import EtcdServer
from tests.waiting import eventually

pytestmark = pytest.mark.etcd

log = logging.getLogger(__name__)

TIMING = DEFAULT_ETCD_TIMING
SAMPLE_EVERY = 0.02
HANDOVER_BOUND = 1.0


class Candidates:
    """Candidates of one fresh election on one etcd, each running in a task of its own."""

    def __init__(self, endpoint: str, count: int = 3) -> None:
        self.endpoint = endpoint
        self.election = f"sc-{uuid.uuid4().hex[:8]}"
        self.root = f"/t-{uuid.uuid4().hex[:8]}/"
        self.members = [
            EtcdCandidate(
                [endpoint],
                election=self.election,
                name=f"sc-{index}",
                address=f"127.0.0.1:{9004 + index}",
                root=self.root,
            )
            for index in range(count)
        ]
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Candidates:
        self._tasks = [
            asyncio.create_task(member.run(), name=f"run-{member.name}") for member in self.members
        ]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.gather(*(member.close() for member in self.members))
        async with asyncio.timeout(5):
            ended = await asyncio.gather(*self._tasks, return_exceptions=True)
        failures = [e for e in ended if e is not None and not isinstance(e, asyncio.CancelledError)]
        assert not failures, f"run() failed: {failures}"

    def task_of(self, member: EtcdCandidate) -> asyncio.Task[None]:
        return self._tasks[self.members.index(member)]

    def leaders(self) -> list[EtcdCandidate]:
        return [member for member in self.members if member.term is not None]

    async def one_leader(self, *, within: float = 5.0) -> EtcdCandidate:
        """The single candidate holding a term, once there is exactly one."""

        def single() -> EtcdCandidate | None:
            leaders = self.leaders()
            return leaders[0] if len(leaders) == 1 else None

        return await eventually(single, timeout=within, interval=0.005, what="one leader")

    async def new_leader(self, *, after_epoch: int, within: float) -> EtcdCandidate:
        def newer() -> EtcdCandidate | None:
            leaders = self.leaders()
            if len(leaders) == 1 and epoch_of(leaders[0]) > after_epoch:
                return leaders[0]
            return None

        return await eventually(
            newer, timeout=within, interval=0.005, what=f"one leader above epoch {after_epoch}"
        )

    async def read_key(self) -> KeyState:
        client = ElectionClient([self.endpoint], request_timeout=2.0)
        try:
            return await client.read(self.members[0].key)
        finally:
            await client.close()


class TermLog:
    """Samples who holds a term every SAMPLE_EVERY seconds; records overlaps and every term."""

    def __init__(self, candidates: Candidates) -> None:
        self.candidates = candidates
        self.terms: list[tuple[str, Term]] = []
        self.overlaps: list[list[str]] = []
        self._task: asyncio.Task[None] | None = None

    def __enter__(self) -> TermLog:
        self._task = asyncio.create_task(self._sample(), name="term-sampler")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _sample(self) -> None:
        while True:
            holders = self.candidates.leaders()
            if len(holders) > 1:
                self.overlaps.append([f"{member.name}@{epoch_of(member)}" for member in holders])
            for member in holders:
                term = member.term
                if term is not None and all(term is not seen for _, seen in self.terms):
                    self.terms.append((member.name, term))
            await asyncio.sleep(SAMPLE_EVERY)


def epoch_of(candidate: EtcdCandidate) -> int:
    term = candidate.term
    return -1 if term is None else term.epoch


@pytest.fixture
def own_etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    """An etcd of this test alone, free to be paused, killed and restarted."""
    server = EtcdServer(tmp_path / "etcd")
    server.start()
    try:
        yield server
    finally:
        if server.pid is not None:  # never leave it stopped: SIGTERM would wait in vain
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.pid, signal.SIGCONT)
        server.stop()


@pytest.fixture
async def three(etcd_server: EtcdServer) -> AsyncIterator[Candidates]:
    async with Candidates(etcd_server.endpoint) as candidates:
        yield candidates


async def test_exactly_one_of_three_wins_and_its_epoch_is_the_key_create_revision(
    three: Candidates,
) -> None:
    leader = await three.one_leader()
    await asyncio.sleep(4 * TIMING.renew_interval)  # a few renewals later, still one leader
    assert three.leaders() == [leader]

    state = await three.read_key()
    assert state.key is not None
    assert leader.term is not None
    assert state.key.create_revision == leader.term.epoch
    assert state.key.holder() == (leader.name, leader.address)
    expected = LeaderInfo(leader.name, leader.address, leader.term.epoch)
    assert [member.leader() for member in three.members] == [expected] * 3


async def test_resign_hands_over_at_once_with_a_larger_epoch(three: Candidates) -> None:
    leader = await three.one_leader()
    old_epoch = epoch_of(leader)

    started = time.monotonic()
    await leader.resign()
    successor = await three.new_leader(after_epoch=old_epoch, within=HANDOVER_BOUND)
    handover = time.monotonic() - started
    log.info("etcd handover %s -> %s took %.3fs", leader.name, successor.name, handover)

    assert successor is not leader
    assert leader.term is None
    state = await three.read_key()
    assert state.key is not None
    assert state.key.create_revision == epoch_of(successor) > old_epoch


async def test_deleting_the_leader_key_ends_the_term_at_once(three: Candidates) -> None:
    leader = await three.one_leader()
    term = leader.term
    assert term is not None

    client = ElectionClient([three.endpoint], request_timeout=2.0)
    try:
        deleted_at = time.monotonic()
        assert await client.release(leader.key, term.epoch)
    finally:
        await client.close()
    async with asyncio.timeout(1.0):
        await term.lost.wait()
    log.info("leader noticed its deleted key after %.3fs", time.monotonic() - deleted_at)

    assert term.lost_reason == "leader key deleted"
    successor = await three.new_leader(after_epoch=term.epoch, within=2.0)
    assert epoch_of(successor) > term.epoch


@pytest.mark.parametrize(
    "resume_after",
    [
        pytest.param(0.1, id="leases-outlive-the-pause"),
        pytest.param(1.0, id="leases-expire-in-the-pause"),
    ],
)
async def test_a_leader_cut_off_from_etcd_stops_at_its_renew_deadline(
    own_etcd: EtcdServer, resume_after: float
) -> None:
    pid = own_etcd.pid
    assert pid is not None
    async with Candidates(own_etcd.endpoint) as candidates:
        leader = await candidates.one_leader()
        await asyncio.sleep(2 * TIMING.renew_interval)
        term = leader.term
        assert term is not None

        with TermLog(candidates) as terms:
            paused_at = time.monotonic()
            os.kill(pid, signal.SIGSTOP)
            try:
                async with asyncio.timeout(TIMING.lease_ttl + 1.0):
                    await term.lost.wait()
                lost_at = time.monotonic()
                deadline = term.valid_until  # nothing can renew it while etcd is stopped
                await asyncio.sleep(resume_after)
            finally:
                os.kill(pid, signal.SIGCONT)
            last_renewal_sent = deadline - TIMING.renew_deadline
            log.info(
                "leader %s stopped %.3fs after etcd was paused, %.3fs after its last renewal "
                "was sent (renew deadline %.2fs, lease ttl %.2fs)",
                leader.name,
                lost_at - paused_at,
                lost_at - last_renewal_sent,
                TIMING.renew_deadline,
                TIMING.lease_ttl,
            )

            assert "renew deadline" in term.lost_reason
            assert deadline <= lost_at < deadline + 0.1
            assert lost_at - last_renewal_sent < TIMING.lease_ttl
            assert last_renewal_sent <= paused_at + 0.05

            successor = await candidates.new_leader(after_epoch=term.epoch, within=8.0)
            log.info(
                "after etcd resumed, %s leads with epoch %d", successor.name, epoch_of(successor)
            )
            await terms.stop()
        assert terms.overlaps == []


async def test_etcd_crash_and_restart_settles_on_one_leader_with_fresh_epochs(
    own_etcd: EtcdServer,
) -> None:
    async with Candidates(own_etcd.endpoint) as candidates:
        leader = await candidates.one_leader()
        old_epoch = epoch_of(leader)
        with TermLog(candidates) as terms:
            killed_at = time.monotonic()
            await asyncio.to_thread(own_etcd.kill)
            await asyncio.sleep(TIMING.lease_ttl)
            await asyncio.to_thread(own_etcd.start)
            restarted_at = time.monotonic()

            successor = await candidates.new_leader(after_epoch=old_epoch, within=10.0)
            settled_at = time.monotonic()
            log.info(
                "etcd crash failover: %s (epoch %d) -> %s (epoch %d), %.3fs after the kill, "
                "%.3fs after etcd was healthy again",
                leader.name,
                old_epoch,
                successor.name,
                epoch_of(successor),
                settled_at - killed_at,
                settled_at - restarted_at,
            )
            await asyncio.sleep(1.0)
            await terms.stop()

        assert terms.overlaps == []
        assert candidates.leaders() == [successor]
        epochs = [term.epoch for _, term in sorted(terms.terms, key=lambda held: held[1].won_at)]
        assert epochs == sorted(set(epochs)), f"epochs repeated or went back: {terms.terms}"
        assert epochs[-1] == epoch_of(successor) > old_epoch


async def test_cancelling_run_ends_the_term_and_frees_the_key(three: Candidates) -> None:
    leader = await three.one_leader()
    term = leader.term
    assert term is not None

    started = time.monotonic()
    task = three.task_of(leader)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert term.lost_reason == "candidate stopped"
    successor = await three.new_leader(after_epoch=term.epoch, within=HANDOVER_BOUND)
    log.info(
        "after cancelling %s, %s led within %.3fs",
        leader.name,
        successor.name,
        time.monotonic() - started,
    )


async def test_closing_while_etcd_hangs_is_prompt_and_leaves_no_thread(
    own_etcd: EtcdServer,
) -> None:
    pid = own_etcd.pid
    assert pid is not None
    name = f"sc-{uuid.uuid4().hex[:8]}"
    candidate = EtcdCandidate(
        [own_etcd.endpoint], election=f"e-{name}", name=name, address="127.0.0.1:9004"
    )
    running = asyncio.create_task(candidate.run())
    await candidate.wait_won()
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        async with asyncio.timeout(3.0):
            await candidate.close()
            await running
        closing = time.monotonic() - started
        log.info("closing while etcd hangs took %.3fs", closing)
        assert closing < 4 * candidate.timing.renew_deadline / 3
        await eventually(
            lambda: not any(t.name.startswith(f"etcd-{name}") for t in threading.enumerate()),
            timeout=2.0,
            interval=0.05,
            what=f"no etcd-{name} thread left",
        )
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_a_candidate_waits_out_an_unreachable_etcd(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = EtcdServer(tmp_path / "etcd")  # ports chosen, nothing listening yet
    try:
        async with Candidates(server.endpoint, count=1) as candidates:
            await asyncio.sleep(1.0)
            assert candidates.leaders() == []
            await asyncio.to_thread(server.start)
            leader = await candidates.one_leader(within=5.0)
            assert leader is candidates.members[0]
    finally:
        server.stop()
    assert any("etcd unreachable" in record.getMessage() for record in caplog.records)


def test_invalid_timings_are_refused() -> None:
    with pytest.raises(ValueError, match="must be greater than renew_deadline"):
        ElectionTiming(lease_ttl=1.0, renew_deadline=1.5, renew_interval=0.25, retry_period=0.25)
    fractional = ElectionTiming(
        lease_ttl=2.5, renew_deadline=1.5, renew_interval=0.25, retry_period=0.25
    )
    with pytest.raises(ValueError, match="whole seconds"):
        EtcdCandidate(
            ["127.0.0.1:2379"], election="sc", name="sc-0", address="a", timing=fractional
        )
