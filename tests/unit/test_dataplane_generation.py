"""A replica's log directory is its partition's: a later partition of the same key (its
topic deleted and created again) starts empty, whatever was left on disk."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ha_sc.spu.dataplane.generation import GENERATION_FILE, recorded_generation
from ha_sc.spu.dataplane.replica import Replica
from ha_sc.spu.storage import LogSettings
from tests.data_client import records_batch


@pytest.fixture
def io() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


def replica(directory: Path, io: ThreadPoolExecutor, generation: int | None) -> Replica:
    return Replica(
        "orders-0",
        directory,
        log_settings=LogSettings(),
        io=io,
        tail_bytes=1024,
        generation=generation,
    )


async def written(directory: Path, io: ThreadPoolExecutor, generation: int | None) -> None:
    """Three records in the log of ``orders-0`` at ``generation``, closed."""
    first = replica(directory, io, generation)
    await first.load()
    await first.mutate(lambda log: log.append_replicated(records_batch([b"a", b"b", b"c"])))
    assert first.leo == 3
    await first.close()


async def test_a_log_of_another_generation_is_deleted_before_opening(
    tmp_path: Path, io: ThreadPoolExecutor
) -> None:
    directory = tmp_path / "orders-0"
    await written(directory, io, generation=4)
    assert recorded_generation(directory) == 4
    again = replica(directory, io, generation=9)
    await again.load()
    assert (again.leo, again.hw, again.log_start) == (0, 0, 0)
    assert await again.read(0, 1 << 20, 3) == b""
    await again.mutate(lambda log: log.append_replicated(records_batch([b"new"])))
    assert again.leo == 1
    assert recorded_generation(directory) == 9
    await again.close()


async def test_the_same_generation_keeps_its_log(tmp_path: Path, io: ThreadPoolExecutor) -> None:
    directory = tmp_path / "orders-0"
    await written(directory, io, generation=4)
    restarted = replica(directory, io, generation=4)
    await restarted.load()
    assert restarted.leo == 3
    await restarted.close()


async def test_a_log_written_before_generations_is_kept_and_marked(
    tmp_path: Path, io: ThreadPoolExecutor
) -> None:
    directory = tmp_path / "orders-0"
    await written(directory, io, generation=None)
    assert not (directory / GENERATION_FILE).exists()
    upgraded = replica(directory, io, generation=9)
    await upgraded.load()
    assert upgraded.leo == 3
    assert recorded_generation(directory) == 9
    await upgraded.close()


async def test_without_a_generation_any_log_of_the_key_is_the_replicas(
    tmp_path: Path, io: ThreadPoolExecutor
) -> None:
    directory = tmp_path / "orders-0"
    await written(directory, io, generation=4)
    from_an_older_sc = replica(directory, io, generation=None)
    await from_an_older_sc.load()
    assert from_an_older_sc.leo == 3
    await from_an_older_sc.close()
