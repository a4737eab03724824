"""The state file's replicas, kept encoded one by one: the file says what a whole
re-encoding would, after adds, changes, removals and a key removed and added again, and
only the replicas changed since the last write are encoded again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ha_sc.protocol import ReplicaSpec
from ha_sc.spu import ControlState, StateFile, read_state
from ha_sc.spu import state_replicas as state_replicas_module
from ha_sc.spu.state_replicas import ReplicaLines

ME = 5001


def spec(partition: str, leader: int, *replicas: int) -> ReplicaSpec:
    return ReplicaSpec(partition=partition, leader=leader, replicas=list(replicas))


def whole(state: ControlState) -> list[object]:
    """The replicas as the document built whole says them."""
    return json.loads(json.dumps(state.snapshot()["replicas"]))  # type: ignore[no-any-return]


def test_the_encoded_replicas_follow_every_change_in_partition_order() -> None:
    state = ControlState(ME)
    state.replicas.update([spec("b-0", ME, ME, 5002), spec("z-0", 5002, 5002, ME)])
    lines = ReplicaLines(state.replicas)  # made after the first replicas were held
    state.replicas.update([spec("a-0", 5003, 5003, ME)])
    assert lines.refresh()
    assert json.loads(lines.array()) == whole(state)
    state.replicas.update(
        [spec("b-0", 5002, ME, 5002), spec("c-0", ME, ME), spec("a-1", ME, ME, 5003)],
        removed=["a-0"],
    )
    assert lines.refresh()
    assert json.loads(lines.array()) == whole(state)
    state.replicas.update([], removed=["c-0"])
    assert lines.refresh()
    state.replicas.update([spec("c-0", 5003, 5003, ME)])  # removed and added again
    state.replicas.update([spec("a-1", 5003, 5003, 5002)])  # not this SPU's any more
    assert lines.refresh()
    assert json.loads(lines.array()) == whole(state)
    assert [r["partition"] for r in json.loads(lines.array())] == ["b-0", "c-0", "z-0"]


def test_only_changed_replicas_are_encoded_again() -> None:
    state = ControlState(ME)
    state.replicas.update([spec(f"t-{n}", ME, ME, 5002) for n in range(100)])
    lines = ReplicaLines(state.replicas)
    assert lines.pending == 100
    assert not lines.refresh(limit=40)  # a slice: some left
    assert lines.refresh()
    assert lines.pending == 0
    state.replicas.update([spec("t-7", 5002, ME, 5002)])
    assert lines.pending == 1
    lines.refresh()
    assert json.loads(lines.array()) == whole(state)


async def test_the_state_file_holds_the_encoded_replicas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = ControlState(ME)
    state.replicas.update([spec(f"t-{n}", ME, ME, 5002) for n in range(3 * 7)])
    lines = ReplicaLines(state.replicas)
    path = tmp_path / "spu-state.json"
    state_file = StateFile(path, state.summary, interval=0.1, replicas=lines)
    monkeypatch.setattr(state_replicas_module, "SLICE", 5)  # several slices
    await lines.refresh_sliced()
    state_file.write()
    doc = read_state(path)
    assert doc is not None
    assert doc["replicas"] == whole(state)
    assert doc["id"] == ME and doc["highest_epoch"] == 0
