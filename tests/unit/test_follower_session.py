"""A follower's fetch session against a scripted leader: what each fetch tells, how long
it waits, and what the follower does with the answers (real replicas and logs)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pytest

from ha_sc.protocol.data import DataError, ErrorCode, ReplicaSessionFetch, ReplicaSessionResult
from ha_sc.protocol.fetch_session import (
    PartitionAnswer,
    SessionChanges,
    decode_changes,
    encode_answers,
)
from ha_sc.spu.dataplane.follower_session import FollowerSession
from ha_sc.spu.dataplane.replica import Replica
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from ha_sc.spu.storage import LogSettings
from tests.data_client import records_batch

SESSION = 5


class ScriptedLeader:
    """Answers each session fetch with the next scripted list of partition answers,
    noting what each fetch told and how long it asked to wait."""

    def __init__(self, answers: list[list[PartitionAnswer]]) -> None:
        self._answers = iter(answers)
        self.told: list[SessionChanges] = []
        self.waits: list[int] = []
        self.sessions: list[int] = []
        self.done = asyncio.Event()

    async def session_fetch(
        self, request: ReplicaSessionFetch, body: bytes, timeout: float
    ) -> tuple[ReplicaSessionResult, bytes]:
        assert timeout > request.wait_ms / 1000  # never given up on before the leader answers
        self.told.append(decode_changes(body))
        self.waits.append(request.wait_ms)
        self.sessions.append(request.session)
        answers = next(self._answers, None)
        if answers is None:
            self.done.set()
            await asyncio.Event().wait()  # parked until cancelled
        assert answers is not None
        result = ReplicaSessionResult(id=request.id, session=SESSION)
        return result, b"".join(encode_answers(answers))


@pytest.fixture
def io() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


def replica(tmp_path: Path, io: ThreadPoolExecutor, key: str) -> Replica:
    return Replica(key, tmp_path / key, log_settings=LogSettings(), io=io, tail_bytes=1024)


async def run_until_parked(
    session: FollowerSession, leader: ScriptedLeader, told: tuple[str, int] | None = None
) -> None:
    """Run ``session`` until a fetch is parked at the leader (and, if ``told``, until a
    parked fetch told that partition at that offset in full)."""
    running = asyncio.create_task(session.run())

    def told_it() -> bool:
        return told is None or any((*told, None) in changes.fetch for changes in leader.told[1:])

    try:
        async with asyncio.timeout(10):
            while not (leader.done.is_set() and told_it()):
                await asyncio.sleep(0.01)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_the_full_set_once_then_only_moved_offsets_and_an_idle_wait_that_backs_off(
    tmp_path: Path, io: ThreadPoolExecutor
) -> None:
    settings = DataPlaneSettings(replica_wait_ms=1000, replica_idle_wait_ms=3000)
    a, b = replica(tmp_path, io, "t-0"), replica(tmp_path, io, "t-1")
    records = records_batch([b"x", b"y"])
    leader = ScriptedLeader(
        [
            [PartitionAnswer("t-0", 0, 0, 0, 0), PartitionAnswer("t-1", 0, 0, 0, 0)],
            [PartitionAnswer("t-0", 0, 2, 2, 0, data=records)],  # records for t-0
            [PartitionAnswer("t-0", 2, 2, 2, 0)],  # its HW moves
            [],
            [],
            [],
        ]
    )
    session = FollowerSession(2, 1, cast(Any, leader), settings)
    session.add(a)
    session.add(b)
    await run_until_parked(session, leader)
    assert sorted(leader.told[0].fetch) == [("t-0", 0, None), ("t-1", 0, None)]
    assert leader.sessions[:2] == [0, SESSION]
    assert list(leader.told[1].fetch) == []  # nothing moved
    assert list(leader.told[2].fetch) == [("t-0", 2, None)]  # appended: told once
    assert all(list(told.fetch) == [] for told in leader.told[3:])
    # a new session's first fetch answers at once; empty answers double the wait
    assert leader.waits == [0, 1000, 1000, 1000, 2000, 3000, 3000]
    assert (a.leo, a.hw, b.leo, b.hw) == (2, 2, 0, 0)
    await a.close()
    await b.close()


async def test_a_partition_answered_with_an_error_is_told_again_and_the_others_go_on(
    tmp_path: Path, io: ThreadPoolExecutor
) -> None:
    settings = DataPlaneSettings(replica_wait_ms=1000, replica_idle_wait_ms=1000)
    a, b = replica(tmp_path, io, "t-0"), replica(tmp_path, io, "t-1")
    refused = DataError(code=ErrorCode.NOT_LEADER, message="spu 1 does not lead t-1")
    leader = ScriptedLeader(
        [
            [PartitionAnswer("t-0", 0, 0, 0, 0), PartitionAnswer("t-1", 0, 0, 0, 0, error=refused)],
            [PartitionAnswer("t-0", 0, 1, 1, 0, data=records_batch([b"z"]))],
            [PartitionAnswer("t-1", 0, 0, 0, 0)],
        ]
    )
    session = FollowerSession(2, 1, cast(Any, leader), settings)
    session.add(a)
    session.add(b)
    await run_until_parked(session, leader, told=("t-1", 0))  # told again after a back-off
    assert ("t-1", 0, None) in leader.told[0].fetch
    assert (a.leo, a.hw) == (1, 1)  # meanwhile t-0 went on
    await a.close()
    await b.close()
