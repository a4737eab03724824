"""The SPU's link to the SC against hand-scripted SC replicas on 127.0.0.1: redirects,
the epoch fence on a live session, silence, refusal and the reconnect backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from opentelemetry.trace import StatusCode

from ha_sc.model import Endpoint, SpuSpec
from ha_sc.protocol import (
    Delta,
    FullSync,
    Message,
    NotLeader,
    Refused,
    Register,
    ReplicaSpec,
    SpuMessage,
    StatusReport,
    Watch,
    encode_message,
    spu_message_decoder,
)
from ha_sc.spu import ControlState, NoLogs, ReplicaRole, ScLink, SpuSettings
from ha_sc.telemetry.tracing_context import carrier, tracer
from tests.tracing_capture import by_name, captured_spans
from tests.waiting import eventually

ME = 5001


class Peer:
    """One SPU connection as a scripted SC replica sees it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = spu_message_decoder()
        self.received: list[SpuMessage] = []
        self._pending: list[SpuMessage] = []

    async def receive(self) -> SpuMessage:
        while not self._pending:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("closed")
            self._pending.extend(self.decoder.feed(data))
        message = self._pending.pop(0)
        self.received.append(message)
        return message

    async def send(self, message: Message) -> None:
        self.writer.write(encode_message(message))
        await self.writer.drain()

    async def until_closed(self) -> None:
        """Read (status reports) until the SPU closes the connection."""
        with contextlib.suppress(ConnectionError):
            while True:
                await self.receive()


Script = Callable[[Peer], Awaitable[None]]


class ScriptedSc:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.peers: list[Peer] = []
        """Session connections (first message: register), in order."""
        self.watchers: list[Peer] = []
        """Watch connections (first message: watch): kept open, silent."""
        self.accepted_at: list[float] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    @property
    def address(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(reader, writer)
        accepted = time.monotonic()
        task = asyncio.create_task(self._run(peer, accepted), name="scripted-sc-connection")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, peer: Peer, accepted: float) -> None:
        try:
            first = await peer.receive()
            if isinstance(first, Watch):
                self.watchers.append(peer)
                await peer.until_closed()
                return
            assert isinstance(first, Register) and first.spu_id == ME
            self.peers.append(peer)
            self.accepted_at.append(accepted)
            await self.script(peer)
        except ConnectionError:
            pass
        finally:
            peer.writer.close()
            with contextlib.suppress(OSError):
                await peer.writer.wait_closed()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


@pytest.fixture
async def scs() -> AsyncIterator[Callable[[Script], Awaitable[ScriptedSc]]]:
    started: list[ScriptedSc] = []

    async def start(script: Script) -> ScriptedSc:
        sc = ScriptedSc(script)
        await sc.start()
        started.append(sc)
        return sc

    yield start
    for sc in started:
        await sc.stop()


@contextlib.asynccontextmanager
async def running_link(
    tmp_path: Path, addresses: list[str], **settings: float
) -> AsyncIterator[tuple[ScLink, ControlState]]:
    config = SpuSettings(
        spu_id=ME,
        sc_addresses=tuple(addresses),
        data_dir=tmp_path,
        status_interval=0.05,
        **{"sc_timeout": 2.0, "backoff_initial": 0.02, "backoff_max": 0.2, **settings},
    )
    state = ControlState(ME)
    link = ScLink(config, state, NoLogs())
    task = asyncio.create_task(link.run(), name="sc-link")
    try:
        yield link, state
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def spu(spu_id: int) -> SpuSpec:
    return SpuSpec(
        id=spu_id,
        public_endpoint=Endpoint(host="127.0.0.1", port=9005),
        private_endpoint=Endpoint(host="127.0.0.1", port=9006),
    )


def spec(partition: str, leader: int, *replicas: int) -> ReplicaSpec:
    return ReplicaSpec(partition=partition, leader=leader, replicas=list(replicas))


async def serve(peer: Peer, epoch: int, *replicas: ReplicaSpec) -> None:
    """Act as a leader: a full sync, then read status until the SPU leaves."""
    await peer.send(FullSync(epoch=epoch, spus=[spu(ME)], replicas=list(replicas)))
    await peer.until_closed()


async def test_a_redirect_leads_to_the_leader_and_status_flows(
    tmp_path: Path, scs: Callable[[Script], Awaitable[ScriptedSc]]
) -> None:
    leader = await scs(lambda peer: serve(peer, 3, spec("a-0", ME, ME)))
    standby = await scs(lambda peer: peer.send(NotLeader(epoch=3, leader_private=leader.address)))
    async with running_link(tmp_path, [standby.address]) as (_, state):
        await eventually(lambda: state.sc_address == leader.address)
        assert {r.partition: r.role for r in state.replicas.replicas()} == {
            "a-0": ReplicaRole.LEADER
        }
        await eventually(lambda: len(leader.peers[0].received) >= 3)
        reports = leader.peers[0].received[1:]
        assert all(isinstance(r, StatusReport) and r.spu_id == ME for r in reports)
        assert len(standby.peers) == 1


async def test_a_stale_delta_mid_session_is_refused_and_ends_the_session(
    tmp_path: Path, scs: Callable[[Script], Awaitable[ScriptedSc]]
) -> None:
    async def deposed_midway(peer: Peer) -> None:
        await peer.send(FullSync(epoch=5, spus=[spu(ME)], replicas=[spec("a-0", ME, ME)]))
        await peer.send(Delta(epoch=5, replicas_changed=[spec("b-0", 5002, 5002, ME)]))
        await peer.send(Delta(epoch=4, replicas_removed=["a-0", "b-0"]))
        await peer.until_closed()

    sc = await scs(deposed_midway)
    async with running_link(tmp_path, [sc.address]) as (_, state):
        await eventually(lambda: state.refused >= 1)
        assert state.highest_epoch == 5
        assert {r.partition for r in state.replicas.replicas()} == {"a-0", "b-0"}
        await eventually(lambda: len(sc.peers) >= 2)  # the spu left and came back


async def test_a_stale_full_sync_is_refused_and_the_next_replica_tried(
    tmp_path: Path, scs: Callable[[Script], Awaitable[ScriptedSc]]
) -> None:
    new = await scs(lambda peer: serve(peer, 8, spec("a-0", ME, ME)))
    old = await scs(lambda peer: serve(peer, 7, spec("stale-0", ME, ME)))
    async with running_link(tmp_path, [old.address, new.address]) as (link, state):
        state.fence.admit(8)  # seen epoch 8 before
        await eventually(lambda: state.sc_address == new.address)
        assert state.refused == 1
        assert [r.partition for r in state.replicas.replicas()] == ["a-0"]
        assert link.sessions == 2


async def test_a_silent_sc_is_left_after_the_sc_timeout(
    tmp_path: Path, scs: Callable[[Script], Awaitable[ScriptedSc]]
) -> None:
    async def then_silent(peer: Peer) -> None:
        await peer.send(FullSync(epoch=1, spus=[spu(ME)], replicas=[spec("a-0", ME, ME)]))
        await peer.until_closed()  # reads status, never sends a keepalive

    sc = await scs(then_silent)
    async with running_link(tmp_path, [sc.address], sc_timeout=0.3) as (_, state):
        await eventually(lambda: len(sc.peers) >= 2)
        gap = sc.accepted_at[1] - sc.accepted_at[0]
        assert 0.3 <= gap < 1.0
        assert [r.partition for r in state.replicas.replicas()] == ["a-0"]  # kept meanwhile


async def test_a_refused_spu_keeps_trying_with_backoff(
    tmp_path: Path,
    scs: Callable[[Script], Awaitable[ScriptedSc]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ha_sc.spu")
    sc = await scs(lambda peer: peer.send(Refused(epoch=2, reason="spu 5001 is not registered")))
    async with running_link(tmp_path, [sc.address], backoff_initial=0.02, backoff_max=0.16) as (
        _,
        state,
    ):
        await eventually(lambda: len(sc.peers) >= 7, timeout=5)
        gaps = [b - a for a, b in zip(sc.accepted_at, sc.accepted_at[1:], strict=False)]
        assert gaps[0] >= 0.02 and gaps[1] >= 0.04 and gaps[2] >= 0.08  # doubling...
        assert all(0.16 <= g < 0.4 for g in gaps[3:6])  # ...up to the cap
        assert state.sc_address is None
    assert "refused this spu at epoch 2: spu 5001 is not registered" in caplog.text


async def test_a_traced_push_is_applied_as_its_child_and_the_next_report_carries_it_on(
    tmp_path: Path, scs: Callable[[Script], Awaitable[ScriptedSc]]
) -> None:
    with captured_spans() as exported:
        with tracer("test").start_as_current_span("push full_sync to spu 5001") as push:
            pushed = carrier(push)
        with tracer("test").start_as_current_span("push delta to spu 5001") as stale_push:
            stale = carrier(stale_push)

        async def traced(peer: Peer) -> None:
            await peer.send(FullSync(epoch=5, trace=pushed, spus=[spu(ME)], replicas=[]))
            for _ in range(20):  # the register, then status reports until a traced one
                message = await peer.receive()
                if isinstance(message, StatusReport) and message.trace:
                    break
            await peer.send(Delta(epoch=4, trace=stale, replicas_removed=["a-0"]))
            await peer.until_closed()

        sc = await scs(traced)
        async with running_link(tmp_path, [sc.address]) as (_, state):
            await eventually(lambda: state.refused >= 1)
        spans = exported.get_finished_spans()
    (applied,) = by_name(spans, f"spu {ME} apply full_sync")
    assert applied.parent is not None and applied.parent.span_id == push.get_span_context().span_id
    report = next(r for r in sc.peers[0].received if isinstance(r, StatusReport) and r.trace)
    (reported,) = by_name(spans, f"spu {ME} status report")
    assert reported.parent is not None and reported.parent.span_id == applied.context.span_id
    assert f"{reported.context.span_id:016x}" in report.trace["traceparent"]
    (refused,) = by_name(spans, f"spu {ME} apply delta")
    assert refused.status.status_code is StatusCode.ERROR
    assert "stale epoch 4" in (refused.status.description or "")
