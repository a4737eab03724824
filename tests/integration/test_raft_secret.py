"""The Raft port with a group secret: a node with the wrong secret cannot join, read the
log or disturb the group, and no unauthenticated byte reaches pickle."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import socket
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pysyncobj.utility import TcpUtility, UtilityException

from ha_sc.kv.raft import RaftKv
from ha_sc.secret_file import new_secret
from tests.harnesses import RaftHarness
from tests.net import free_addresses
from tests.waiting import eventually

pytestmark = pytest.mark.raft

GROUP_SECRET = new_secret()


@pytest.fixture
async def group(tmp_path: Path) -> AsyncIterator[list[RaftKv]]:
    """Three Raft KV nodes on loopback sharing ``GROUP_SECRET``, with a leader."""
    harness = RaftHarness(tmp_path, secret=GROUP_SECRET)
    try:
        await harness.start()
        yield harness.nodes
    finally:
        await harness.close()


def _leader(nodes: list[RaftKv]) -> str | None:
    leaders = {node.raft_leader() for node in nodes}
    return leaders.pop() if len(leaders) == 1 else None


async def test_a_node_with_the_wrong_secret_cannot_join_read_or_disturb(
    group: list[RaftKv], tmp_path: Path
) -> None:
    await group[0].create("topics", "before", b"{}")
    leader = _leader(group)
    assert leader is not None
    members = group[0].members()
    [intruder_address] = free_addresses(1)
    intruder = RaftKv(
        intruder_address,
        sorted(members),
        tmp_path / "intruder",
        secret=new_secret(),  # not the group's
    )
    try:
        # it keeps calling elections at higher terms the group never hears of: while it
        # tries, the group keeps committing and keeps its leader
        for n in range(20):
            await group[n % 3].create("topics", f"during-{n}", b"{}")
            await asyncio.sleep(0.1)
        assert _leader(group) == leader
        assert group[0].members() == members  # it was never enrolled
        assert intruder.revision == 0  # it read nothing of the log
        assert not (await intruder.list("topics")).entries
        assert intruder.raft_leader() in (None, intruder_address)
        assert not any(intruder.is_connected(a) for a in members)
    finally:
        await intruder.close()


@pytest.mark.parametrize("password", [None, "not-the-group-secret-at-all"])
async def test_the_admin_commands_of_the_raft_port_need_the_secret(
    group: list[RaftKv], password: str | None
) -> None:
    """pysyncobj's own ``status`` and ``add`` commands (what syncobj_admin sends) get
    no answer and change nothing without the group's secret."""
    members = group[0].members()
    [stranger] = free_addresses(1)
    utility = TcpUtility(password=password, timeout=2.0)
    for command in (["status"], ["add", stranger]):
        with pytest.raises(UtilityException):
            await asyncio.to_thread(utility.executeCommand, group[0].address, command)
    await group[0].create("topics", "after", b"{}")
    assert group[0].members() == members
    with_secret = TcpUtility(password=GROUP_SECRET, timeout=5.0)
    status = await asyncio.to_thread(with_secret.executeCommand, group[0].address, ["status"])
    assert status["self"] is not None  # the same command with the secret is answered


def _file_creating_pickle(target: Path) -> bytes:
    """A pysyncobj frame (length, zlib'd pickle) whose unpickling makes the directory
    ``target``."""

    class MakesDirectory:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.mkdir, (str(target),))

    body = zlib.compress(pickle.dumps(MakesDirectory()), 3)
    return struct.pack("i", len(body)) + body


def _send_raw(address: str, frame: bytes) -> None:
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=2.0) as sock:
        sock.sendall(frame)
        sock.settimeout(2.0)
        with contextlib.suppress(OSError):
            sock.recv(1)  # the node answers or closes; either way it has read the frame


async def test_a_raw_pickle_frame_never_reaches_pickle_on_a_node_with_a_secret(
    group: list[RaftKv], tmp_path: Path
) -> None:
    target = tmp_path / "created-by-pickle"
    for node in group:
        await asyncio.to_thread(_send_raw, node.address, _file_creating_pickle(target))
    await group[0].create("topics", "after", b"{}")  # the group went on regardless
    assert not target.exists()


async def test_without_a_secret_the_same_frame_is_unpickled(tmp_path: Path) -> None:
    """The frame of the test above does what it says where the port is open (the test
    above could fail)."""
    [address] = free_addresses(1)
    node = RaftKv(address, [], tmp_path / "open-node")
    target = tmp_path / "created-by-pickle"
    try:
        await node.wait_ready()
        await asyncio.to_thread(_send_raw, address, _file_creating_pickle(target))
        await eventually(target.exists, timeout=5.0, what="the frame unpickled")
    finally:
        await node.close()
