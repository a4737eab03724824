"""A replica fetch is served only on a connection proven as the follower it names.

The proof itself (pure), then a real private ``DataPort`` on loopback whose
connections each get a ``ReplicaSession`` in front of a fake dispatch, reached by the
real follower side (``LeaderLink``) or by a raw client that forges."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from ha_sc.protocol import Delta, FullSync
from ha_sc.protocol.admission import RefusalLog
from ha_sc.protocol.data import (
    ErrorCode,
    ReplicaChallenge,
    ReplicaFetchRequest,
    ReplicaFetchResponse,
    ReplicaHello,
    ReplicaProof,
    ReplicaProven,
)
from ha_sc.protocol.fetch_proof import fetch_key, fetch_proof, proof_holds
from ha_sc.spu.control_state import ControlState
from ha_sc.spu.dataplane.admission import PortLimits
from ha_sc.spu.dataplane.link import LeaderLink, LinkDown
from ha_sc.spu.dataplane.listener import DataPort
from ha_sc.spu.dataplane.replica_session import ReplicaSession, fetch_refusal
from ha_sc.spu.dataplane.serving import Frame
from ha_sc.spu.fetch_keys import FetchKeys
from tests.data_client import RawDataClient
from tests.net import free_addresses

LEADER, FOLLOWER, OTHER = 5001, 5002, 5003
KEY_5002 = fetch_key("token-of-spu-5002-" + "b" * 16)
KEY_5003 = fetch_key("token-of-spu-5003-" + "c" * 16)
NONCE = bytes(range(32))


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="ha_sc.spu.dataplane")
    return caplog


def test_a_proof_holds_only_for_its_key_nonce_leader_and_follower() -> None:
    proof = fetch_proof(KEY_5002, NONCE, leader=LEADER, follower=FOLLOWER)
    assert proof_holds(KEY_5002, NONCE, proof, leader=LEADER, follower=FOLLOWER)
    assert not proof_holds(KEY_5003, NONCE, proof, leader=LEADER, follower=FOLLOWER)
    assert not proof_holds(KEY_5002, bytes(32), proof, leader=LEADER, follower=FOLLOWER)
    assert not proof_holds(KEY_5002, NONCE, proof, leader=OTHER, follower=FOLLOWER)
    assert not proof_holds(KEY_5002, NONCE, proof, leader=LEADER, follower=OTHER)
    assert not proof_holds(None, NONCE, proof, leader=LEADER, follower=FOLLOWER)


def test_a_fetch_key_is_fixed_by_its_token_and_is_not_the_token() -> None:
    token = "token-of-spu-5002-" + "b" * 16
    assert fetch_key(token) == KEY_5002 != fetch_key(token + "x")
    assert token.encode() not in KEY_5002 and len(KEY_5002) == 32


@pytest.mark.parametrize(
    ("proven", "checking", "refused"),
    [
        (FOLLOWER, True, None),
        (FOLLOWER, False, None),
        (None, False, None),
        (None, True, "on a connection that proved no follower id"),
        (OTHER, True, f"naming follower {FOLLOWER} on a connection proven as {OTHER}"),
        (OTHER, False, f"naming follower {FOLLOWER} on a connection proven as {OTHER}"),
    ],
)
def test_which_fetches_a_leader_serves(
    proven: int | None, checking: bool, refused: str | None
) -> None:
    refusal = fetch_refusal(LEADER, FOLLOWER, proven, checking)
    assert (refusal is None) == (refused is None)
    assert refused is None or (refusal is not None and refused in refusal)


def test_the_sc_turns_the_check_on_and_off_through_the_control_state() -> None:
    state = ControlState(LEADER, check_fetches=True)
    assert state.fetch_keys.checking and state.fetch_keys.key(FOLLOWER) is None
    state.apply(FullSync(epoch=1, fetch_keys={FOLLOWER: KEY_5002.hex()}))
    assert state.fetch_keys.key(FOLLOWER) == KEY_5002
    state.apply(Delta(epoch=1, fetch_keys={FOLLOWER: KEY_5003.hex()}))
    assert state.fetch_keys.key(FOLLOWER) == KEY_5003
    state.apply(Delta(epoch=1))  # a keepalive leaves the keys alone
    assert state.fetch_keys.key(FOLLOWER) == KEY_5003
    state.apply(FullSync(epoch=2))  # an SC without SPU tokens
    assert not state.fetch_keys.checking and state.fetch_keys.key(FOLLOWER) is None
    assert KEY_5003.hex() not in repr(Delta(epoch=1, fetch_keys={FOLLOWER: KEY_5003.hex()}))


@dataclass
class FakeLeader:
    """Answers each replica fetch that reaches it with an HW of 7."""

    fetches: list[int]

    def __call__(self, header: Any, body: bytes) -> asyncio.Future[Frame]:
        self.fetches.append(header.follower)
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        future.set_result((ReplicaFetchResponse(id=header.id, hw=7, leo=7), b""))
        return future


@dataclass
class PrivatePort:
    address: str
    keys: FetchKeys
    reached: list[int]
    sessions: list[ReplicaSession]


@contextlib.asynccontextmanager
async def private_port(*, checking: bool) -> AsyncIterator[PrivatePort]:
    keys = FetchKeys(LEADER, checking=checking)
    if checking:
        keys.update({FOLLOWER: KEY_5002.hex(), OTHER: KEY_5003.hex()})
    leader = FakeLeader([])
    sessions: list[ReplicaSession] = []
    refusals = RefusalLog()

    def session(host: str) -> Any:
        sessions.append(ReplicaSession(LEADER, keys, leader, host, refusals))
        return sessions[-1].dispatch

    limits = PortLimits(
        max_connections=10, max_connections_per_peer=10, first_frame_timeout=10.0,
        max_in_flight=64, max_answer=1 << 20, max_send_buffer=1 << 20,
    )  # fmt: skip
    data_port = DataPort("private", free_addresses(1)[0], session, in_order=False, limits=limits)
    serving = asyncio.create_task(data_port.serve(), name="private port under test")
    try:
        await asyncio.wait_for(data_port.bound.wait(), 10)
        yield PrivatePort(data_port.address, keys, leader.fetches, sessions)
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


def replica_fetch(follower: int) -> ReplicaFetchRequest:
    return ReplicaFetchRequest(id=0, topic="t", partition=0, follower=follower, offset=0)


def link_to(port: PrivatePort, key: bytes | None, follower: int = FOLLOWER) -> LeaderLink:
    return LeaderLink(
        LEADER, lambda: port.address, connect_timeout=5.0, follower=follower, fetch_key=key
    )


async def test_a_follower_with_its_key_is_proven_and_served() -> None:
    async with private_port(checking=True) as port:
        link = link_to(port, KEY_5002)
        try:
            response, _ = await link.fetch(replica_fetch(FOLLOWER), timeout=5.0)
        finally:
            await link.close()
    assert response.error is None and response.hw == 7
    assert port.reached == [FOLLOWER]
    assert [s.proven for s in port.sessions] == [FOLLOWER]


async def test_a_follower_with_a_wrong_key_is_refused_before_any_fetch(
    logs: pytest.LogCaptureFixture,
) -> None:
    async with private_port(checking=True) as port:
        link = link_to(port, KEY_5003)  # 5003's key, claiming to be 5002
        try:
            with pytest.raises(LinkDown, match=r"refused this follower.*a wrong proof"):
                await link.fetch(replica_fetch(FOLLOWER), timeout=5.0)
        finally:
            await link.close()
    assert port.reached == []
    assert f"spu {LEADER}: refused the proof of follower {FOLLOWER}: a wrong proof" in logs.text
    assert KEY_5003.hex() not in logs.text


async def fetched_again(link: LeaderLink) -> bool:
    """Whether a fetch as FOLLOWER is served within 3 tries (the first may still go out on
    the connection the leader is closing)."""
    for _ in range(3):
        with contextlib.suppress(LinkDown):
            response, _ = await link.fetch(replica_fetch(FOLLOWER), timeout=5.0)
            return response.error is None
    return False


async def test_a_fetch_naming_another_follower_is_refused_and_closes_the_connection(
    logs: pytest.LogCaptureFixture,
) -> None:
    async with private_port(checking=True) as port:
        link = link_to(port, KEY_5002)
        try:
            response, _ = await link.fetch(replica_fetch(OTHER), timeout=5.0)
            assert response.error is not None and response.error.code is ErrorCode.UNAUTHORIZED
            assert port.reached == []
            assert await fetched_again(link)  # on a new connection
        finally:
            await link.close()
    assert link.connections == 2
    assert port.reached == [FOLLOWER]
    assert (
        f"spu {LEADER}: refused a replica fetch naming follower {OTHER} on a connection "
        f"proven as {FOLLOWER}" in logs.text
    )


async def test_an_unproven_fetch_is_refused_while_the_leader_checks() -> None:
    async with private_port(checking=True) as port, RawDataClient(port.address) as forger:
        response, _ = await forger.request(replica_fetch(FOLLOWER))
        assert response.error is not None and response.error.code is ErrorCode.UNAUTHORIZED
        with pytest.raises(ConnectionError):
            await forger.receive()
    assert port.reached == []


async def test_a_proof_needs_the_nonce_of_its_own_connection() -> None:
    """A proof made for one connection's nonce, replayed on another, is refused."""
    async with (
        private_port(checking=True) as port,
        RawDataClient(port.address) as first,
        RawDataClient(port.address) as replay,
    ):
        challenge, _ = await first.request(ReplicaHello(id=1, follower=FOLLOWER))
        assert isinstance(challenge, ReplicaChallenge)
        proof = fetch_proof(
            KEY_5002, bytes.fromhex(challenge.nonce), leader=LEADER, follower=FOLLOWER
        ).hex()
        await replay.request(ReplicaHello(id=1, follower=FOLLOWER))
        answer, _ = await replay.request(ReplicaProof(id=2, follower=FOLLOWER, proof=proof))
        assert isinstance(answer, ReplicaProven) and answer.error is not None
        answer, _ = await first.request(ReplicaProof(id=2, follower=FOLLOWER, proof=proof))
        assert isinstance(answer, ReplicaProven) and answer.error is None
    assert [s.proven for s in port.sessions] == [FOLLOWER, None]


async def test_without_keys_fetches_pass_unproven_and_a_follower_with_a_key_still_works() -> None:
    async with private_port(checking=False) as port:
        unproven, proving = link_to(port, None), link_to(port, KEY_5003, follower=OTHER)
        try:
            first, _ = await unproven.fetch(replica_fetch(FOLLOWER), timeout=5.0)
            second, _ = await proving.fetch(replica_fetch(OTHER), timeout=5.0)
        finally:
            await unproven.close()
            await proving.close()
    assert first.error is None and second.error is None
    assert port.reached == [FOLLOWER, OTHER]
