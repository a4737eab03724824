"""The SC's SPU server driven by hand-written frames over 127.0.0.1: registration,
status, keepalives, and every way a connection ends, with the server running on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from election.guard import Guard
from election.term import Term
from ha_sc import awake
from ha_sc.api.addresses import ReplicaAddresses
from ha_sc.api.replica_view import KnownLeader
from ha_sc.kv.memory import MemoryKv
from ha_sc.model import (
    Endpoint,
    Kind,
    PartitionSpec,
    SpuSpec,
    TopicReplicas,
    TopicSpec,
    encode_value,
)
from ha_sc.protocol import (
    Delta,
    FullSync,
    LeaderNotice,
    Message,
    NotLeader,
    Refused,
    Register,
    ReplicaReport,
    ScMessage,
    SpecCursor,
    StatusReport,
    Watch,
    encode_message,
    parse_address,
    sc_message_decoder,
)
from ha_sc.protocol.fetch_proof import fetch_key
from ha_sc.sc import spu_connection
from ha_sc.sc.spu_server import SpuServer
from ha_sc.sc.spu_tokens import SpuTokenFile, parse_spu_tokens
from ha_sc.secret_file import SecretFileError, write_secret
from ha_sc.store import GlobalStore, start_dispatchers
from ha_sc.tasks import Supervisor
from tests.waiting import eventually

ME = 5001
ONE = TopicReplicas.new_computed(1, 1)


def stall(seconds: float) -> None:
    """Block the event loop (the stall a long synchronous step makes)."""
    time.sleep(seconds)


class View:
    def __init__(self) -> None:
        self.replica_id = "sc-a"
        self.kv = MemoryKv()
        self.cache = GlobalStore()
        self.current_term: Term | None = None
        self.known_leader: KnownLeader | None = None
        self.privates = ["127.0.0.1:9004", "127.0.0.1:9014"]

    def term(self) -> Term | None:
        return self.current_term

    def leader(self) -> KnownLeader | None:
        return self.known_leader

    def replica_privates(self) -> list[str]:
        return list(self.privates)

    def raft_group(self) -> None:
        return None

    async def step_down(self) -> None:
        self.current_term = None

    def win(self, *, for_seconds: float = 3600) -> Term:
        holder = self.kv.leases.acquire("sc", self.replica_id)
        assert holder is not None
        self.current_term = Term(
            Guard("sc", holder.epoch), valid_until=time.monotonic() + for_seconds
        )
        return self.current_term


class Client:
    """An SPU speaking frames by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = sc_message_decoder()
        self.pending: list[ScMessage] = []

    async def send(self, message: Message) -> None:
        await self.send_raw(encode_message(message))

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self, timeout: float = 3.0) -> ScMessage | None:
        """The next message; None once the server closed the connection."""
        async with asyncio.timeout(timeout):
            while not self.pending:
                try:
                    data = await self.reader.read(65536)
                except ConnectionError:
                    return None
                if not data:
                    return None
                self.pending.extend(self.decoder.feed(data))
        return self.pending.pop(0)

    async def until_closed(self, timeout: float = 3.0) -> list[ScMessage]:
        messages = []
        while (message := await self.receive(timeout)) is not None:
            messages.append(message)
        return messages

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


Connect = Callable[[], Awaitable[Client]]


@pytest.fixture
async def view() -> AsyncIterator[View]:
    v = View()
    supervisor = Supervisor()
    start_dispatchers(v.cache, v.kv, supervisor)
    spec = SpuSpec(
        id=ME,
        public_endpoint=Endpoint(host="127.0.0.1", port=9005),
        private_endpoint=Endpoint(host="127.0.0.1", port=9006),
    )
    await v.kv.create(Kind.SPU.value, "custom-spu", encode_value(spec))
    await eventually(lambda: len(v.cache.spus), what="the spu cached")
    yield v
    await supervisor.stop()


@pytest.fixture
async def server(view: View) -> AsyncIterator[SpuServer]:
    s = SpuServer(view, "127.0.0.1:0", health_timeout=0.4, keepalive_interval=0.1)
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def connect(server: SpuServer) -> AsyncIterator[Connect]:
    clients: list[Client] = []

    async def open_client() -> Client:
        host, port = parse_address(server.address)
        client = Client(*await asyncio.open_connection(host, port))
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.close()


@pytest.fixture(autouse=True)
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="ha_sc.sc.spu")
    return caplog


async def registered(connect: Connect) -> tuple[Client, FullSync]:
    client = await connect()
    await client.send(Register(spu_id=ME))
    full = await client.receive()
    assert isinstance(full, FullSync)
    return client, full


async def test_a_registered_spu_gets_a_full_sync_keepalives_and_is_heard(
    view: View, server: SpuServer, connect: Connect
) -> None:
    term = view.win()
    client, full = await registered(connect)
    assert full.epoch == term.epoch
    assert full.sc_members == view.privates
    assert [s.id for s in full.spus] == [ME]
    assert server.connected_ids() == {ME}

    report = StatusReport(spu_id=ME, replicas=[ReplicaReport(partition="a-0", leo=3, hw=2)])
    sent = time.monotonic()
    await client.send(report)
    await eventually(lambda: server.last_status(ME) is not None)
    status = server.last_status(ME)
    assert status is not None and status.report == report and status.at >= sent
    assert server.statuses().keys() == {ME}

    keepalive = await client.receive()
    assert keepalive == Delta(epoch=term.epoch, cursor=full.cursor)  # nothing changed

    # later reports amend the picture: changed replicas and removed partitions only
    await client.send(
        StatusReport(spu_id=ME, replicas=[ReplicaReport(partition="b-0", leo=1, hw=1)])
    )
    await client.send(
        StatusReport(
            spu_id=ME,
            full=False,
            replicas=[ReplicaReport(partition="c-0", leo=5, hw=5)],
            removed=["b-0"],
        )
    )
    await client.send(StatusReport(spu_id=ME, full=False))  # a quiet heartbeat

    def partitions() -> list[tuple[str, int]]:
        status = server.last_status(ME)
        assert status is not None
        return [(r.partition, r.leo) for r in status.report.replicas]

    await eventually(lambda: partitions() == [("c-0", 5)])


async def test_a_standby_names_the_leader_or_none(
    view: View, server: SpuServer, connect: Connect
) -> None:
    client = await connect()
    await client.send(Register(spu_id=ME))
    assert await client.until_closed() == [NotLeader(epoch=0, leader_private=None)]


def known(replica_id: str, epoch: int, private: str = "127.0.0.1:9014") -> KnownLeader:
    return KnownLeader(replica_id, epoch, ReplicaAddresses("127.0.0.1:9013", private))


async def served_on_winning_within_the_hold(
    view: View, connect: Connect, register: Register
) -> None:
    client = await connect()
    await client.send(register)
    await asyncio.sleep(0.2)
    term = view.win()
    full = await client.receive()
    assert isinstance(full, FullSync) and full.epoch == term.epoch


async def test_a_standby_holds_an_spu_that_lost_its_leader_and_serves_it_on_winning(
    view: View, server: SpuServer, connect: Connect
) -> None:
    view.known_leader = known("sc-b", 1)  # the leader the SPU just lost, as still known here
    await served_on_winning_within_the_hold(view, connect, Register(spu_id=ME, left_epoch=1))


async def test_a_held_spu_is_sent_to_the_new_leader_once_it_is_known(
    view: View, server: SpuServer, connect: Connect
) -> None:
    view.known_leader = known("sc-b", 1)
    client = await connect()
    asked = time.monotonic()
    await client.send(Register(spu_id=ME, left_epoch=1))
    await asyncio.sleep(0.2)
    view.known_leader = known("sc-c", 2, "127.0.0.1:9024")
    answer = await client.receive()
    assert answer == NotLeader(epoch=2, leader_private="127.0.0.1:9024")
    assert time.monotonic() - asked < 0.9  # not at the end of the 1 s hold


@pytest.mark.parametrize(
    ("known_epoch", "earliest", "latest"),
    [(2, 0.0, 0.5), (1, 1.0, 3.0)],
    ids=["a newer leader is named at once", "the lost leader is named after the hold"],
)
async def test_a_standby_names_what_it_knows_once_holding_is_pointless(
    view: View,
    server: SpuServer,
    connect: Connect,
    known_epoch: int,
    earliest: float,
    latest: float,
) -> None:
    view.known_leader = known("sc-c", known_epoch)
    client = await connect()
    asked = time.monotonic()
    await client.send(Register(spu_id=ME, left_epoch=1))
    answer = await client.receive()
    assert answer == NotLeader(epoch=known_epoch, leader_private="127.0.0.1:9014")
    assert earliest <= time.monotonic() - asked < latest


async def test_a_replica_that_won_holds_an_spu_until_it_acts(
    view: View, server: SpuServer, connect: Connect
) -> None:
    view.known_leader = known("sc-a", 3)  # this replica won; its cache is catching up
    await served_on_winning_within_the_hold(view, connect, Register(spu_id=ME))


async def test_an_unknown_spu_is_refused(
    view: View, server: SpuServer, connect: Connect, logs: pytest.LogCaptureFixture
) -> None:
    term = view.win()
    client = await connect()
    await client.send(Register(spu_id=42))
    reason = "spu 42 is not registered with the cluster"
    assert await client.until_closed() == [Refused(epoch=term.epoch, reason=reason)]
    assert server.connected_ids() == set()
    assert "refused spu 42 from 127.0.0.1:" in logs.text


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        (b"\x00\x00\x00\x02{]", "malformed message: frame is not valid JSON"),
        (
            encode_message(StatusReport(spu_id=ME)),
            "expected a register message first, got status_report",
        ),
        (b"", "no register message within 0.4 s"),
    ],
)
async def test_a_bad_start_closes_only_that_connection(
    view: View,
    server: SpuServer,
    connect: Connect,
    logs: pytest.LogCaptureFixture,
    first: bytes,
    reason: str,
) -> None:
    view.win()
    client = await connect()
    await client.send_raw(first)
    assert await client.until_closed() == []
    assert f"closed before registering: {reason}" in logs.text
    await registered(connect)  # the server runs on


@pytest.mark.parametrize(
    ("then", "reason"),
    [
        (encode_message(Register(spu_id=ME)), "protocol violation: the spu registered twice"),
        (
            encode_message(StatusReport(spu_id=5002)),
            "protocol violation: a status report of spu 5002 on the connection of spu 5001",
        ),
        (
            b'\x00\x00\x00\x10{"type":"hello"}',
            "malformed message: unknown message type 'hello' from the spu",
        ),
        (b"\x7f\x00\x00\x00", "malformed message: frame of 2130706432 bytes exceeds"),
    ],
)
async def test_a_bad_message_ends_the_connection_with_its_reason(
    view: View,
    server: SpuServer,
    connect: Connect,
    logs: pytest.LogCaptureFixture,
    then: bytes,
    reason: str,
) -> None:
    view.win()
    client, _ = await registered(connect)
    await client.send_raw(then)
    await client.until_closed()
    await eventually(lambda: not server.connected_ids())
    assert f"spu {ME} offline: {reason}" in logs.text
    await registered(connect)


async def test_an_spu_gets_time_to_apply_the_specs_it_was_sent(
    view: View, server: SpuServer, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spu_connection, "DIGEST_PER_SPEC", 0.5)  # as if each took 0.5 s
    await view.kv.create(
        Kind.PARTITION.value, "orders-0", encode_value(PartitionSpec(leader=ME, replicas=[ME]))
    )
    await eventually(lambda: len(view.cache.partitions) == 1)
    view.win()
    client, full = await registered(connect)
    assert len(full.replicas) == 1
    started = time.monotonic()
    await asyncio.sleep(0.7)  # past the 0.4 s health timeout, within 0.4 + 0.5
    assert server.connected_ids() == {ME}
    await client.send(StatusReport(spu_id=ME))  # applied: from now on 0.4 s as usual
    await eventually(lambda: not server.connected_ids())
    assert time.monotonic() - started < 0.7 + 0.4 + 0.5


async def test_silence_past_the_health_timeout_is_offline(
    view: View, server: SpuServer, connect: Connect, logs: pytest.LogCaptureFixture
) -> None:
    view.win()
    client, _ = await registered(connect)
    started = time.monotonic()
    for _ in range(4):  # status keeps it alive
        await client.send(StatusReport(spu_id=ME))
        await asyncio.sleep(0.2)
    assert server.connected_ids() == {ME}
    await eventually(lambda: not server.connected_ids())
    assert time.monotonic() - started >= 0.6 + 0.4 - 0.05  # the last report, then 0.4 s
    assert f"spu {ME} offline: no status for 0.4 s" in logs.text


async def test_a_new_connection_of_the_same_spu_replaces_the_old(
    view: View, server: SpuServer, connect: Connect, logs: pytest.LogCaptureFixture
) -> None:
    view.win()
    old, _ = await registered(connect)
    new, _ = await registered(connect)
    await old.until_closed()
    assert server.connected_ids() == {ME}
    assert f"spu {ME} offline: replaced by a new connection from 127.0.0.1:" in logs.text
    await new.send(StatusReport(spu_id=ME))
    assert isinstance(await new.receive(), Delta)


async def test_the_end_of_the_term_closes_every_connection(
    view: View, server: SpuServer, connect: Connect, logs: pytest.LogCaptureFixture
) -> None:
    term = view.win()
    client, _ = await registered(connect)
    term.end("lost the lease")
    await client.until_closed()
    await eventually(lambda: not server.connected_ids())
    assert f"spu {ME} offline: term at epoch {term.epoch} ended: lost the lease" in logs.text


async def test_a_term_past_its_renew_deadline_stops_serving(
    view: View, server: SpuServer, connect: Connect, logs: pytest.LogCaptureFixture
) -> None:
    term = view.win(for_seconds=0.3)
    client, _ = await registered(connect)
    messages = await client.until_closed()
    assert all(m.epoch == term.epoch for m in messages)  # keepalives until then
    assert f"term at epoch {term.epoch} ended: its renew deadline passed" in logs.text
    again = await connect()
    await again.send(Register(spu_id=ME))  # no longer the leader as far as it knows
    assert await again.until_closed() == [NotLeader(epoch=0, leader_private=None)]


async def test_an_unregistered_spu_hears_it_and_is_let_go(
    view: View, server: SpuServer, connect: Connect, logs: pytest.LogCaptureFixture
) -> None:
    term = view.win()
    client, _ = await registered(connect)
    await view.kv.delete(Kind.SPU.value, "custom-spu")
    messages = await client.until_closed()
    unstamped = [m.model_copy(update={"cursor": None}) for m in messages]
    assert Delta(epoch=term.epoch, spus_removed=[ME]) in unstamped
    assert f"spu {ME} offline: spu {ME} is no longer registered with the cluster" in logs.text


async def test_stop_closes_every_connection(
    view: View, server: SpuServer, connect: Connect
) -> None:
    view.win()
    client, _ = await registered(connect)
    await server.stop()
    await client.until_closed()
    assert server.connected_ids() == set()


async def test_an_address_is_checked_and_known_only_once_bound(view: View) -> None:
    with pytest.raises(ValueError, match="not of the form host:port"):
        SpuServer(view, "9004")
    server = SpuServer(view, "127.0.0.1:0")
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.address


async def test_an_spu_that_registers_as_its_last_connection_ends_is_served(
    view: View, server: SpuServer, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old connection's task has ended, but the supervisor lets go of it one loop turn
    later; a registration served in between must still get a connection of its own."""
    ended = asyncio.Event()
    real_run = spu_connection.SpuConnection.run

    async def run_until_ended(self: spu_connection.SpuConnection) -> str:
        if ended.is_set():
            return await real_run(self)
        await ended.wait()
        self.close("ended by the test")
        self._writer.close()  # and not waiting for it: the task ends in this step
        return "ended by the test"

    monkeypatch.setattr(spu_connection.SpuConnection, "run", run_until_ended)
    view.win()
    first = await connect()
    await first.send(Register(spu_id=ME))
    await eventually(lambda: server.connected_ids() == {ME})
    second = await connect()
    await asyncio.sleep(0.05)  # accepted, its first read waiting
    # in one loop turn: the old connection's task ends, and the register message arrives
    second.writer.write(encode_message(Register(spu_id=ME)))
    asyncio.get_running_loop().call_soon(ended.set)
    full = await second.receive()
    assert isinstance(full, FullSync)
    assert server.connected_ids() == {ME}


async def test_a_stall_of_the_leaders_own_loop_is_not_the_spus_silence(
    view: View, server: SpuServer, connect: Connect, logs: pytest.LogCaptureFixture
) -> None:
    watcher = asyncio.create_task(awake.watch_loop(), name="loop-monitor")
    try:
        view.win(for_seconds=60)
        client, _ = await registered(connect)
        await client.send(StatusReport(spu_id=ME))
        await asyncio.sleep(0.05)
        stall(1.0)  # the leader's loop stalls 2.5x the 0.4 s health timeout
        await asyncio.sleep(0.1)
        await client.send(StatusReport(spu_id=ME))  # the SPU was never silent
        await asyncio.sleep(0.2)
        assert server.connected_ids() == {ME}
        assert "offline" not in logs.text
        await eventually(lambda: not server.connected_ids())  # real silence still counts
        assert f"spu {ME} offline: no status for 0.4 s" in logs.text
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def test_a_watch_is_told_of_each_newer_leader_whatever_the_replicas_role(
    view: View, server: SpuServer, connect: Connect
) -> None:
    """A standby (this replica leads no term here) tells a watching SPU of the leader it
    sees, then of each newer one, and nothing of an epoch it already told of."""
    client = await connect()
    await client.send(Watch(spu_id=ME))
    view.known_leader = KnownLeader("sc-2", 4, ReplicaAddresses("127.0.0.1:1", "127.0.0.1:2"))
    assert await client.receive() == LeaderNotice(epoch=4, leader_private="127.0.0.1:2")
    view.known_leader = KnownLeader("sc-3", 5, ReplicaAddresses("127.0.0.1:3", "127.0.0.1:4"))
    assert await client.receive() == LeaderNotice(epoch=5, leader_private="127.0.0.1:4")
    assert server.connected_ids() == set()
    with pytest.raises(TimeoutError):
        await client.receive(timeout=0.2)  # the same leader: nothing more


TOKEN_5001 = "token-of-spu-5001-" + "a" * 16
TOKEN_5002 = "token-of-spu-5002-" + "b" * 16


@pytest.fixture
async def token_server(view: View) -> AsyncIterator[SpuServer]:
    """A server that needs SPU registration tokens; SPUs 5001 and 5002 are known."""
    spec = SpuSpec(
        id=5002,
        public_endpoint=Endpoint(host="127.0.0.1", port=9007),
        private_endpoint=Endpoint(host="127.0.0.1", port=9008),
    )
    await view.kv.create(Kind.SPU.value, "custom-spu-2", encode_value(spec))
    await eventually(lambda: len(view.cache.spus) == 2, what="both spus cached")
    tokens = parse_spu_tokens(f"# id token\n5001 {TOKEN_5001}\n\n5002 {TOKEN_5002}\n", "test")
    s = SpuServer(view, "127.0.0.1:0", health_timeout=0.4, keepalive_interval=0.1, tokens=tokens)
    await s.start()
    yield s
    await s.stop()


async def _connect_to(server: SpuServer) -> Client:
    host, port = parse_address(server.address)
    return Client(*await asyncio.open_connection(host, port))


@pytest.mark.parametrize(
    ("spu_id", "token", "reason"),
    [
        (5001, None, "spu 5001 sent no registration token (spu run --token-file)"),
        (5001, "not-the-token-of-5001-at-all", "spu 5001 sent a wrong registration token"),
        (5002, TOKEN_5001, "spu 5002 sent a wrong registration token"),
        (42, TOKEN_5001, "spu 42 has no registration token at this SC"),
    ],
)
async def test_an_spu_without_its_own_token_is_refused_and_logged_without_the_token(
    view: View,
    token_server: SpuServer,
    logs: pytest.LogCaptureFixture,
    spu_id: int,
    token: str | None,
    reason: str,
) -> None:
    term = view.win()
    client = await _connect_to(token_server)
    try:
        await client.send(Register(spu_id=spu_id, token=token))
        assert await client.until_closed() == [Refused(epoch=term.epoch, reason=reason)]
    finally:
        await client.close()
    assert token_server.connected_ids() == set()
    assert f"refused spu {spu_id} from 127.0.0.1:" in logs.text and reason in logs.text
    assert token is None or token not in logs.text


async def test_the_right_token_is_served_and_no_other_spu_can_replace_it(
    view: View, token_server: SpuServer, logs: pytest.LogCaptureFixture
) -> None:
    view.win()
    real = await _connect_to(token_server)
    impostor = await _connect_to(token_server)
    try:
        await real.send(Register(spu_id=5001, token=TOKEN_5001))
        sync = await real.receive()
        assert isinstance(sync, FullSync)
        assert sync.fetch_keys == {  # every SPU's replica-fetch key, no token
            5001: fetch_key(TOKEN_5001).hex(),
            5002: fetch_key(TOKEN_5002).hex(),
        }
        await impostor.send(Register(spu_id=5001, token=TOKEN_5002))  # 5002's token
        assert [m.type for m in await impostor.until_closed()] == ["refused"]
        assert token_server.connected_ids() == {5001}
        await real.send(StatusReport(spu_id=5001))  # the real SPU's connection lives on
        assert isinstance(await real.receive(), Delta)
    finally:
        await real.close()
        await impostor.close()
    assert TOKEN_5001 not in logs.text and TOKEN_5002 not in logs.text


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "spu 5001 sent no registration token (spu run --token-file)"),
        (TOKEN_5002, "spu 5001 sent a wrong registration token"),
    ],
)
async def test_a_watch_that_does_not_prove_its_spu_id_is_refused_and_told_nothing(
    view: View,
    token_server: SpuServer,
    logs: pytest.LogCaptureFixture,
    token: str | None,
    reason: str,
) -> None:
    view.known_leader = KnownLeader("sc-2", 4, ReplicaAddresses("127.0.0.1:1", "127.0.0.1:2"))
    client = await _connect_to(token_server)
    try:
        await client.send(Watch(spu_id=5001, token=token))
        assert await client.until_closed() == [Refused(epoch=4, reason=reason)]
    finally:
        await client.close()
    assert "refused the watch of spu 5001 from 127.0.0.1:" in logs.text and reason in logs.text
    assert TOKEN_5002 not in logs.text


async def test_a_watch_with_its_spus_token_is_told_of_the_leader(
    view: View, token_server: SpuServer, logs: pytest.LogCaptureFixture
) -> None:
    view.known_leader = KnownLeader("sc-2", 4, ReplicaAddresses("127.0.0.1:1", "127.0.0.1:2"))
    client = await _connect_to(token_server)
    try:
        await client.send(Watch(spu_id=5001, token=TOKEN_5001))
        assert await client.receive() == LeaderNotice(epoch=4, leader_private="127.0.0.1:2")
    finally:
        await client.close()
    assert TOKEN_5001 not in logs.text
    assert TOKEN_5001 not in repr(Watch(spu_id=5001, token=TOKEN_5001))


def test_a_register_message_does_not_show_its_token() -> None:
    assert TOKEN_5001 not in repr(Register(spu_id=5001, token=TOKEN_5001))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("5001", "line 1: expected '<spu id> <token>'"),
        ("x " + TOKEN_5001, "line 1: expected '<spu id> <token>'"),
        (f"5001 {TOKEN_5001}\n5001 {TOKEN_5002}", "line 2: spu 5001 appears twice"),
        ("5001 short", "line 1: the token must have at least 16 characters"),
    ],
)
def test_a_bad_token_table_is_refused_naming_the_line(text: str, error: str) -> None:
    with pytest.raises(SecretFileError, match=error) as refused:
        parse_spu_tokens(text, "f")
    assert TOKEN_5001 not in str(refused.value)


def test_a_token_file_is_read_again_when_it_changes(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spu-tokens"
    write_secret(path, f"5001 {TOKEN_5001}")
    table = SpuTokenFile(path)
    assert table.refusal(5002, TOKEN_5002) == "spu 5002 has no registration token at this SC"
    write_secret(path, f"5001 {TOKEN_5001}\n5002 {TOKEN_5002}")  # an SPU added
    assert table.refusal(5002, TOKEN_5002) is None
    write_secret(path, "5003")  # a broken edit keeps what was read before
    assert table.refusal(5002, TOKEN_5002) is None
    assert "expected '<spu id> <token>'; keeping the 2 tokens read before" in logs.text


async def test_a_changed_token_file_sends_the_new_fetch_keys_in_a_delta(
    view: View, tmp_path: Path
) -> None:
    path = tmp_path / "spu-tokens"
    write_secret(path, f"5001 {TOKEN_5001}")
    s = SpuServer(
        view, "127.0.0.1:0", health_timeout=0.4, keepalive_interval=0.1, tokens=SpuTokenFile(path)
    )
    await s.start()
    view.win()
    client = await _connect_to(s)
    try:
        await client.send(Register(spu_id=5001, token=TOKEN_5001))
        sync = await client.receive()
        assert isinstance(sync, FullSync) and sync.fetch_keys == {5001: fetch_key(TOKEN_5001).hex()}
        write_secret(path, f"5001 {TOKEN_5001}\n5002 {TOKEN_5002}")  # an SPU added
        keys = None
        for _ in range(50):  # keepalives every 0.1 s until the file is read again
            await client.send(StatusReport(spu_id=5001))
            message = await client.receive()
            if isinstance(message, Delta) and message.fetch_keys is not None:
                keys = message.fetch_keys
                break
        assert keys == {5001: fetch_key(TOKEN_5001).hex(), 5002: fetch_key(TOKEN_5002).hex()}
    finally:
        await client.close()
        await s.stop()


async def put_partition(view: View, key: str, *replicas: int) -> None:
    spec = PartitionSpec(leader=replicas[0], replicas=list(replicas))
    revision = await view.kv.create(Kind.PARTITION.value, key, encode_value(spec))
    await eventually(lambda: view.cache.partitions.revision >= revision, what=f"{key} cached")


async def test_an_spu_with_a_cursor_gets_only_the_changes_since(
    view: View, server: SpuServer, connect: Connect
) -> None:
    term = view.win()
    for topic in ("a", "b"):  # b: the last topic event, sent again
        await view.kv.create(Kind.TOPIC.value, topic, encode_value(TopicSpec(replicas=ONE)))
    await put_partition(view, "a-0", ME)
    await put_partition(view, "a-1", ME, 5002)
    await put_partition(view, "a-2", ME)
    client, full = await registered(connect)
    assert full.cursor is not None
    assert {r.partition for r in full.replicas} == {"a-0", "a-1", "a-2"}
    await client.close()
    await put_partition(view, "a-3", 5002, ME)  # while the spu is away
    await view.kv.delete(Kind.PARTITION.value, "a-0")
    await put_partition(view, "a-4", 5002)  # not this spu's

    again = await connect()
    await again.send(Register(spu_id=ME, cursor=full.cursor))
    resync = await again.receive()
    assert isinstance(resync, Delta) and resync.is_resync
    assert resync.epoch == term.epoch and resync.since == full.cursor
    # the last revision the cursor's store had reached is sent again (a transaction
    # may not have been applied whole): a-2; a-1 is not
    assert sorted(r.partition for r in resync.replicas_changed) == ["a-2", "a-3"]
    assert sorted(resync.replicas_held or ()) == ["a-1", "a-2", "a-3"]
    assert [s.id for s in resync.spus_changed] == [ME]
    assert resync.sc_members == view.privates
    assert resync.cursor is not None and resync.cursor.partitions > full.cursor.partitions
    assert server.pushes["resync"] == 1 and server.pushes["full_sync"] == 1


async def test_a_cursor_ahead_of_the_cache_gets_a_full_sync(
    view: View, server: SpuServer, connect: Connect
) -> None:
    view.win()
    client = await connect()
    ahead = SpecCursor(topics=10**6, partitions=10**6)  # say, from a store restored from a copy
    await client.send(Register(spu_id=ME, cursor=ahead))
    assert isinstance(await client.receive(), FullSync)


async def test_a_term_won_back_under_the_same_epoch_keeps_the_sessions(
    view: View, server: SpuServer, connect: Connect, logs: pytest.LogCaptureFixture
) -> None:
    """The leader missed its renew deadline (a loaded host) and renewed the same lease
    right after: its SPUs keep their sessions, hearing nothing in between, instead of
    registering and resyncing again."""
    term = view.win()
    view.known_leader = known(view.replica_id, term.epoch)  # the lease still names it
    client, full = await registered(connect)
    heartbeat = StatusReport(spu_id=ME)
    await client.send(heartbeat)
    assert isinstance(await client.receive(), Delta)  # a keepalive
    term.end("no renewal succeeded within the renew deadline")
    await client.send(heartbeat)
    with pytest.raises(TimeoutError):  # over two keepalive intervals: nothing is sent
        await client.receive(timeout=0.25)
    await client.send(heartbeat)
    view.current_term = Term(Guard("sc", term.epoch), valid_until=time.monotonic() + 3600)
    keepalive = await client.receive()
    assert keepalive == Delta(epoch=term.epoch, cursor=full.cursor)
    assert server.connected_ids() == {ME}
    assert f"spu {ME}: epoch {term.epoch} won back" in logs.text
    assert "offline" not in logs.text
