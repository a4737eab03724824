"""The SPU's trail of fence decisions: what is written, what is left out."""

from __future__ import annotations

import json
from pathlib import Path

from ha_sc.spu.control_events import CONTROL_EVENTS_FILE, ControlEventLog


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_full_syncs_refusals_and_epoch_changes_are_written_keepalives_are_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / CONTROL_EVENTS_FILE
    trail = ControlEventLog(path, 5001)
    trail.record(epoch=3, accepted=True, message="full_sync", highest=3)
    for _ in range(5):  # keepalives and deltas under the same epoch
        trail.record(epoch=3, accepted=True, message="delta", highest=3)
    trail.record(epoch=2, accepted=False, message="delta", highest=3)
    trail.record(epoch=2, accepted=False, message="full_sync", highest=3)
    trail.record(epoch=5, accepted=True, message="delta", highest=5)
    trail.record(epoch=5, accepted=True, message="full_sync", highest=5)

    written = [(d["epoch"], d["outcome"], d["message"]) for d in lines(path)]
    assert written == [
        (3, "accept", "full_sync"),
        (2, "refuse", "delta"),
        (2, "refuse", "full_sync"),
        (5, "accept", "delta"),
        (5, "accept", "full_sync"),
    ]
    assert {d["spu"] for d in lines(path)} == {5001}
    assert [d["highest"] for d in lines(path)] == [3, 3, 3, 5, 5]


def test_a_restarted_spu_appends_to_the_same_trail(tmp_path: Path) -> None:
    path = tmp_path / "spu" / CONTROL_EVENTS_FILE
    first = ControlEventLog(path, 5002)
    first.record(epoch=4, accepted=True, message="full_sync", highest=4)
    second = ControlEventLog(path, 5002)
    second.record(epoch=4, accepted=True, message="delta", highest=4)  # first after restart
    assert [d["epoch"] for d in lines(path)] == [4, 4]


def test_an_unwritable_trail_does_not_stop_the_spu(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    trail = ControlEventLog(blocker / CONTROL_EVENTS_FILE, 5003)  # parent is a file
    trail.record(epoch=1, accepted=True, message="full_sync", highest=1)
    trail.record(epoch=2, accepted=True, message="full_sync", highest=2)
    assert trail.written == 0
