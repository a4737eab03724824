"""The SPU's table of local replicas: specs in, roles and domain-worded changes out."""

from __future__ import annotations

import asyncio

import pytest

from ha_sc.protocol import ReplicaSpec, ReplicaStorage, encode_message
from ha_sc.protocol.framing import spu_message_decoder
from ha_sc.spu import (
    ChangeKind,
    LocalReplica,
    NoLogs,
    ReplicaOffsets,
    ReplicaRole,
    ReplicaTable,
    StatusReporter,
    replica_status,
    status_report,
)

ME = 5001


def spec(partition: str, leader: int, *replicas: int) -> ReplicaSpec:
    return ReplicaSpec(partition=partition, leader=leader, replicas=list(replicas))


def test_roles_follow_the_leader_id() -> None:
    table = ReplicaTable(ME)
    changes = table.update([spec("a-0", ME, ME, 5002), spec("b-0", 5002, 5002, ME)])
    assert [c.kind for c in changes] == [ChangeKind.ADDED, ChangeKind.ADDED]
    assert table.get("a-0") == LocalReplica("a-0", ReplicaRole.LEADER, ME, (ME, 5002))
    assert table.get("b-0") == LocalReplica("b-0", ReplicaRole.FOLLOWER, 5002, (5002, ME))
    assert [str(c) for c in changes] == [
        "replica a-0 added as leader",
        "replica b-0 added as follower of spu 5002",
    ]


def test_specs_of_partitions_elsewhere_are_ignored() -> None:
    table = ReplicaTable(ME)
    assert table.update([spec("a-0", 5002, 5002, 5003)]) == []
    assert len(table) == 0
    assert "a-0" not in table


def test_promote_demote_and_leader_change() -> None:
    table = ReplicaTable(ME)
    table.update([spec("a-0", 5002, 5002, ME, 5003)])
    (promoted,) = table.update([spec("a-0", ME, 5002, ME, 5003)])
    assert promoted.kind is ChangeKind.PROMOTED
    assert str(promoted) == "replica a-0 promoted to leader (was follower of spu 5002)"
    (demoted,) = table.update([spec("a-0", 5003, 5002, ME, 5003)])
    assert demoted.kind is ChangeKind.DEMOTED
    assert str(demoted) == "replica a-0 demoted to follower of spu 5003"
    (moved,) = table.update([spec("a-0", 5002, 5002, ME, 5003)])
    assert moved.kind is ChangeKind.LEADER_CHANGED
    assert str(moved) == "replica a-0 now follows spu 5002 (was spu 5003)"
    (grown,) = table.update([spec("a-0", 5002, 5002, ME)])
    assert grown.kind is ChangeKind.REPLICAS_CHANGED
    assert str(grown) == "replica a-0 replicas now [5002, 5001] (were [5002, 5001, 5003])"
    assert table.update([spec("a-0", 5002, 5002, ME)]) == []  # same spec: nothing to say


def test_removed_explicitly_or_by_leaving_the_replica_set() -> None:
    table = ReplicaTable(ME)
    table.update([spec("a-0", ME, ME), spec("b-0", 5002, 5002, ME)])
    (removed,) = table.update([], ["a-0", "never-held-0"])
    assert removed.kind is ChangeKind.REMOVED
    assert str(removed) == "replica a-0 removed (was leader)"
    (moved_away,) = table.update([spec("b-0", 5002, 5002, 5003)])
    assert str(moved_away) == "replica b-0 removed (was follower of spu 5002)"
    assert len(table) == 0


def test_a_full_replacement_removes_what_it_does_not_list() -> None:
    table = ReplicaTable(ME)
    table.update([spec("a-0", ME, ME), spec("b-0", ME, ME)])
    changes = table.replace([spec("b-0", 5002, 5002, ME), spec("c-0", ME, ME)])
    assert sorted((c.partition, c.kind) for c in changes) == [
        ("a-0", ChangeKind.REMOVED),
        ("b-0", ChangeKind.DEMOTED),
        ("c-0", ChangeKind.ADDED),
    ]
    assert [r.partition for r in table.replicas()] == ["b-0", "c-0"]


def test_status_report_asks_the_offset_source_for_each_replica() -> None:
    table = ReplicaTable(ME)
    table.update([spec("b-0", 5002, 5002, ME), spec("a-0", ME, ME)])
    report = status_report(table, NoLogs())
    assert report.spu_id == ME
    assert [(r.partition, r.leo, r.hw, r.lsr) for r in report.replicas] == [
        ("a-0", 0, 0, 0),
        ("b-0", 0, 0, None),
    ]

    class Logs:
        def offsets(self, replica: LocalReplica) -> ReplicaOffsets:
            return ReplicaOffsets(leo=10, hw=7 if replica.role is ReplicaRole.LEADER else 5)

        def moved(self) -> set[str]:
            return set()

    report = status_report(table, Logs())
    assert [(r.leo, r.hw) for r in report.replicas] == [(10, 7), (10, 5)]


def test_a_session_reports_everything_first_then_only_what_changed() -> None:
    table = ReplicaTable(ME)
    table.update([spec("a-0", ME, ME), spec("b-0", ME, ME)])
    leo = {"a-0": 0, "b-0": 0}

    class Logs:
        def offsets(self, replica: LocalReplica) -> ReplicaOffsets:
            return ReplicaOffsets(leo=leo[replica.partition], hw=0)

        def moved(self) -> None:
            return None  # cannot tell: every replica is compared

    reporter = StatusReporter()
    first = reporter.next_report(table, Logs())
    assert first.full
    assert [r.partition for r in first.replicas] == ["a-0", "b-0"]

    quiet = reporter.next_report(table, Logs())
    assert (quiet.full, quiet.replicas, quiet.removed) == (False, [], [])

    leo["b-0"] = 3
    table.replace([spec("b-0", ME, ME)])  # a-0 is no longer assigned here
    changed = reporter.next_report(table, Logs())
    assert not changed.full
    assert [(r.partition, r.leo) for r in changed.replicas] == [("b-0", 3)]
    assert changed.removed == ["a-0"]

    assert StatusReporter().next_report(table, Logs()).full  # a new session starts over


def test_reports_look_at_what_moved_and_sweep_everything_now_and_then() -> None:
    table = ReplicaTable(ME)
    table.update([spec(f"t-{n}", ME, ME) for n in range(100)])
    leo = dict.fromkeys((f"t-{n}" for n in range(100)), 0)
    said: set[str] = set()
    asked: list[str] = []

    class Logs:
        def offsets(self, replica: LocalReplica) -> ReplicaOffsets:
            asked.append(replica.partition)
            return ReplicaOffsets(leo=leo[replica.partition], hw=0)

        def moved(self) -> set[str]:
            moved = set(said)
            said.clear()
            return moved

    reporter = StatusReporter(sweep_every=4)
    assert len(reporter.next_report(table, Logs()).replicas) == 100  # report 1: full
    asked.clear()

    leo["t-7"] = 5
    said.add("t-7")
    table.update([spec("t-200", ME, ME)])
    leo["t-200"] = 0
    report = reporter.next_report(table, Logs())  # report 2: what moved, what was added
    assert sorted(r.partition for r in report.replicas) == ["t-200", "t-7"]
    assert sorted(asked) == ["t-200", "t-7"]

    leo["t-9"] = 3  # a move nobody said
    asked.clear()
    assert reporter.next_report(table, Logs()).replicas == []  # report 3: not looked at
    assert asked == []
    swept = reporter.next_report(table, Logs())  # report 4: every replica compared
    assert [(r.partition, r.leo) for r in swept.replicas] == [("t-9", 3)]
    assert len(asked) == 101

    table.replace([spec("t-1", ME, ME)])
    gone = reporter.next_report(table, Logs())
    assert len(gone.removed) == 100 and "t-1" not in gone.removed


def test_a_storage_settings_change_is_its_own_kind() -> None:
    table = ReplicaTable(ME)
    table.update([spec("a-0", ME, ME, 5002)])
    local = table.get("a-0")
    assert local is not None and local.storage == ReplicaStorage()
    storage = ReplicaStorage(segment_size=1024, retention_time_seconds=60)
    changed = spec("a-0", ME, ME, 5002).model_copy(update={"storage": storage})
    (change,) = table.update([changed])
    assert change.kind is ChangeKind.STORAGE_CHANGED
    assert str(change) == (
        "replica a-0 storage settings now segments of 1024 bytes, retention 60 s"
    )
    local = table.get("a-0")
    assert local is not None and local.storage == storage and local.role is ReplicaRole.LEADER
    assert table.update([changed]) == []


def test_a_new_generation_of_a_key_replaces_the_replica() -> None:
    table = ReplicaTable(ME)
    old = ReplicaSpec(partition="a-0", leader=ME, replicas=[ME, 5002], generation=4)
    table.update([old])
    new = old.model_copy(update={"generation": 9})
    (replaced,) = table.update([new])
    assert replaced.kind is ChangeKind.REPLACED
    assert str(replaced) == (
        "replica a-0 is another partition now (generation 4 -> 9): leader, its log starts empty"
    )
    assert table.get("a-0") == LocalReplica("a-0", ReplicaRole.LEADER, ME, (ME, 5002), generation=9)


def test_a_generation_first_sent_by_a_newer_sc_is_the_same_replica() -> None:
    table = ReplicaTable(ME)
    table.update([spec("a-0", ME, ME, 5002)])
    with_generation = ReplicaSpec(partition="a-0", leader=ME, replicas=[ME, 5002], generation=4)
    assert table.update([with_generation]) == []  # nothing to say: the same replica
    replica = table.get("a-0")
    assert replica is not None and replica.generation == 4


def test_a_touched_feed_names_what_changed_since_its_holder_last_took_it() -> None:
    table = ReplicaTable(ME)
    table.update([spec("a-0", ME, ME, 5002)])
    feed = table.touched_feed()
    assert feed == set()  # what came before is not in it
    table.update([spec("a-0", 5002, 5002, ME), spec("b-0", ME, ME, 5002)])
    table.update([spec("a-0", 5002, 5002, ME)])  # the same spec again: no change
    assert feed == {"a-0", "b-0"}
    feed.clear()
    table.replace([spec("b-0", ME, ME, 5002)])  # a full sync without a-0
    assert feed == {"a-0"}
    assert table.take_touched() == {"a-0", "b-0"}  # the other reader keeps its own


async def test_a_sliced_report_lets_the_loop_run_and_says_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(replica_status, "SLICE", 10)
    table = ReplicaTable(ME)
    table.update([spec(f"t-{n}", ME, ME, 5002) for n in range(95)])
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        for _ in range(1000):  # bounded: far more turns than the report takes
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick(), name="ticker")
    try:
        sliced = await StatusReporter().next_report_sliced(table, NoLogs())
    finally:
        ticker.cancel()
    assert ticks >= 9  # the loop ran between the slices of 95 replicas
    whole = StatusReporter().next_report(table, NoLogs())
    assert sliced.model_dump() == whole.model_dump()
    assert sliced.full and len(sliced.replicas) == 95
    framed = await replica_status.report_frame(sliced)  # encoded 10 replicas at a time
    (decoded,) = spu_message_decoder().feed(framed)
    assert decoded == whole
    assert framed != encode_message(whole)  # not the one-call encoding: the slices did it


def test_the_opening_picture_goes_out_over_several_reports() -> None:
    """A session's first report is full with the first ``opening`` replicas; the next
    ones carry the rest, that many at a time, with what moved and what was removed."""
    table = ReplicaTable(ME)
    table.update([spec(f"t-{n}", ME, ME) for n in range(10)])
    leo = dict.fromkeys((f"t-{n}" for n in range(10)), 0)

    class Logs:
        def offsets(self, replica: LocalReplica) -> ReplicaOffsets:
            return ReplicaOffsets(leo=leo[replica.partition], hw=0)

        def moved(self) -> set[str]:
            return set()

    reporter = StatusReporter(opening=4)
    first = reporter.next_report(table, Logs())
    assert first.full
    assert [r.partition for r in first.replicas] == ["t-0", "t-1", "t-2", "t-3"]
    table.replace([spec(f"t-{n}", ME, ME) for n in range(10) if n != 5])  # t-5 goes
    second = reporter.next_report(table, Logs())
    assert not second.full
    assert [r.partition for r in second.replicas] == ["t-4", "t-6", "t-7", "t-8"]
    assert second.removed == []  # never reported: nothing to take back
    third = reporter.next_report(table, Logs())
    assert [r.partition for r in third.replicas] == ["t-9"]
    assert reporter.next_report(table, Logs()).replicas == []  # all said: quiet
