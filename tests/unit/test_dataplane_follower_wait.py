"""A follower's fetch of an idle partition waits longer each time it comes back empty."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pytest

from ha_sc.protocol.data import ReplicaFetchRequest, ReplicaFetchResponse
from ha_sc.spu.dataplane.follower import Follower
from ha_sc.spu.dataplane.replica import Replica
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from ha_sc.spu.storage import LogSettings
from tests.data_client import records_batch


class ScriptedLink:
    """Answers each fetch with the next scripted (hw, body), noting the waits asked for."""

    def __init__(self, answers: list[tuple[int, bytes]]) -> None:
        self._answers = iter(answers)
        self.waits: list[int] = []

    async def fetch(
        self, request: ReplicaFetchRequest, timeout: float
    ) -> tuple[ReplicaFetchResponse, bytes]:
        self.waits.append(request.wait_ms)
        assert timeout > request.wait_ms / 1000  # never given up on before the leader answers
        hw, body = next(self._answers)
        return ReplicaFetchResponse(id=request.id, hw=hw, leo=hw), body


@pytest.fixture
def io() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


async def test_idle_fetches_back_off_and_records_bring_the_wait_back(
    tmp_path: Path, io: ThreadPoolExecutor
) -> None:
    settings = DataPlaneSettings(replica_wait_ms=1000, replica_idle_wait_ms=5000)
    replica = Replica("t-0", tmp_path / "t-0", log_settings=LogSettings(), io=io, tail_bytes=1024)
    empty = (0, b"")
    link = ScriptedLink([empty, empty, empty, empty, empty, (1, records_batch([b"a"])), (1, b"")])
    follower = Follower(2, replica, 1, cast(Any, link), settings)
    for _ in range(7):
        assert await follower._step() is None
    assert link.waits == [1000, 2000, 4000, 5000, 5000, 5000, 1000]
    assert (replica.leo, replica.hw) == (1, 1)
    await replica.close()
