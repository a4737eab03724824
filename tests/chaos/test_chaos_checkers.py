"""The checkers on hand-made histories: a lost write, a duplicate, a stale-epoch
accept and a shared epoch are each caught; a clean history flags nothing."""

from __future__ import annotations

from pathlib import Path

from chaos.checkers import epochs, figures, records
from chaos.checkers.verdict import check
from chaos.history.events import Control, Event, Fault, Leader, Phase, Produce, Read
from chaos.history.history import FINAL_READER, History
from chaos.history.recorder import Recorder

T0 = 1_700_000_000.0


def produce(seq: int, offset: int | None, *, at: float, acks: str = "all", outcome: str = "ok",
            producer: str = "p1", latency: float = 0.01) -> Produce:  # fmt: skip
    return Produce(
        producer=producer,
        seq=seq,
        topic="t",
        partition=0,
        acks=acks,
        start=T0 + at,
        end=T0 + at + latency,
        outcome=outcome,
        offset=offset if outcome == "ok" else None,
        error=None if outcome == "ok" else "not_leader: moved",
    )


def read(seq: int, offset: int, *, reader: str = FINAL_READER, producer: str = "p1") -> Read:
    return Read(
        reader=reader, t=T0 + 30, topic="t", partition=0, offset=offset, producer=producer, seq=seq
    )


def leader(at: float, replica: str, epoch: int, role: str = "leader") -> Leader:
    return Leader(t=T0 + at, replica=replica, role=role, epoch=epoch, leader=replica)


def accept(at: float, spu: int, epoch: int, outcome: str = "accept") -> Control:
    return Control(t=T0 + at, spu=spu, epoch=epoch, outcome=outcome)


def clean_events() -> list[Event]:
    """Ten records a second for 20 s, sc-1 killed at 10 s, sc-2 leads 0.8 s later."""
    events: list[Event] = [
        Phase(t=T0, name="baseline"),
        leader(0.0, "sc-1", 3),
        leader(0.0, "sc-2", 3, role="standby"),
        accept(0.1, 5001, 3),
        accept(0.1, 5002, 3),
    ]
    offset = 0
    for i in range(200):
        at = i * 0.1
        if 10.0 <= at < 10.9:  # the failover: nothing acknowledged
            events.append(produce(i, None, at=at, outcome="unknown"))
            continue
        events.append(produce(i, offset, at=at, acks="all" if i % 2 else "leader"))
        offset += 1
    events += [
        Phase(t=T0 + 10.0, name="fault"),
        Fault(t=T0 + 10.0, name="kill", target="sc-1", action="inject"),
        leader(10.8, "sc-2", 4),
        accept(11.0, 5001, 4),
        accept(11.2, 5002, 4),
        accept(11.3, 5001, 3, outcome="refuse"),  # the deposed leader, refused: fine
        Phase(t=T0 + 12.0, name="recovery"),
        Fault(t=T0 + 12.0, name="kill", target="sc-1", action="heal"),
        Phase(t=T0 + 15.0, name="drain"),
    ]
    acked = [e for e in events if isinstance(e, Produce) and e.outcome == "ok"]
    events += [read(p.seq, p.offset or 0) for p in acked]
    events += [read(p.seq, p.offset or 0, reader="live") for p in acked[:50]]
    return events


def test_a_clean_history_flags_nothing() -> None:
    verdict = check(History(clean_events()))
    assert verdict.passed
    assert all(i.checked and i.count == 0 for i in verdict.invariants), verdict.invariants
    assert verdict.figures["lost_acks_leader"] == 0
    assert verdict.figures["spu_refusals"] == {5001: 1}


def test_a_lost_acks_all_write_is_caught() -> None:
    events = clean_events()
    lost = next(e for e in events if isinstance(e, Read) and e.seq == 7 and e.reader == "final")
    events.remove(lost)
    assert records.lost_records(History(events), "all").lost == [("p1", 7)]
    verdict = check(History(events))
    assert not verdict.passed
    assert {i.name: i.count for i in verdict.invariants}["lost_acks_all"] == 1


def test_a_lost_acks_leader_write_is_counted_apart() -> None:
    events = clean_events()
    events = [e for e in events if not (isinstance(e, Read) and e.seq == 8)]  # acks=leader
    verdict = check(History(events))
    assert verdict.passed
    assert verdict.figures["lost_acks_leader"] == 1


def test_a_duplicate_is_caught() -> None:
    events = clean_events()
    events.append(read(5, 400))  # record p1/5 again, at another offset
    assert records.duplicates(History(events)) == {("p1", 5): [("t", 0, 5), ("t", 0, 400)]}
    verdict = check(History(events))
    assert not verdict.passed
    assert {i.name: i.count for i in verdict.invariants}["duplicates"] == 1


def test_reads_that_disagree_on_an_offset_are_caught() -> None:
    events = clean_events()
    events.append(read(999, 3, reader="live", producer="p2"))  # offset 3 held p1/3
    conflicts = records.inconsistent_offsets(History(events))
    assert [(c.position, c.records) for c in conflicts] == [(("t", 0, 3), [("p1", 3), ("p2", 999)])]


def test_a_lost_acks_leader_record_whose_offset_was_reused_is_no_conflict() -> None:
    events = clean_events()
    lost = next(e for e in events if isinstance(e, Produce) and e.seq == 8)  # acks=leader
    events = [e for e in events if not (isinstance(e, Read) and e.seq == 8)]
    events.append(read(999, lost.offset or 0, producer="p2"))  # its offset, another record
    history = History(events)
    assert records.inconsistent_offsets(history) == []
    assert records.lost_records(history, "leader").lost == [("p1", 8)]
    kept = next(e for e in events if isinstance(e, Produce) and e.seq == 10)  # acks=leader, kept
    events.append(read(999, kept.offset or 0, reader="live", producer="p2"))
    assert len(records.inconsistent_offsets(History(events))) == 1


def test_a_stale_epoch_accept_is_caught_per_spu() -> None:
    events = clean_events()
    events.append(accept(11.5, 5002, 3))  # 5002 had accepted epoch 4 already
    events.append(accept(11.5, 5003, 2))  # 5003 never saw more than 2: fine
    stale = epochs.stale_accepts(History(events))
    assert [(s.spu, s.epoch, s.highest_before) for s in stale] == [(5002, 3, 4)]
    verdict = check(History(events))
    assert {i.name: i.count for i in verdict.invariants}["stale_epoch_accepts"] == 1
    assert not verdict.passed


def test_two_replicas_claiming_one_epoch_are_caught() -> None:
    events = clean_events()
    events.append(leader(10.9, "sc-3", 4))
    assert epochs.shared_epochs(History(events)) == {4: ["sc-2", "sc-3"]}
    assert not check(History(events)).passed


def test_figures_of_the_clean_history() -> None:
    history = History(clean_events())
    (failover,) = figures.failovers(history)
    assert failover.epoch_before == 3 and failover.new_epoch == 4
    assert failover.leader_after is not None and abs(failover.leader_after - 0.8) < 1e-6
    assert failover.spus_after is not None and abs(failover.spus_after - 1.2) < 1e-6
    gap = figures.largest_ack_gap(history)
    assert gap is not None and abs(gap.seconds - 1.0) < 1e-6  # 9.9 s -> 10.9 s
    dip = figures.throughput_dip(history)
    assert dip is not None and dip.steady_median == 10 and dip.lowest == 1
    assert figures.client_errors(history) == {"not_leader": 9}


def test_a_recorded_history_reads_back(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "history.jsonl")
    for event in clean_events():
        recorder.record(event)
    recorder.close()
    loaded = History.load(tmp_path / "history.jsonl")
    assert loaded.events == History(clean_events()).events
    assert [w.name for w in loaded.faults()] == ["kill"]
    assert list(loaded.phases()) == ["baseline", "fault", "recovery", "drain"]


def test_a_new_leader_counts_for_the_fault_before_it_only() -> None:
    events: list[Event] = [
        leader(0.0, "sc-1", 3),
        Fault(t=T0 + 1.0, name="restart", target="sc-2", action="inject"),
        Fault(t=T0 + 2.0, name="restart", target="sc-2", action="heal"),
        Fault(t=T0 + 5.0, name="restart", target="sc-1", action="inject"),
        leader(5.5, "sc-2", 4),
        Fault(t=T0 + 6.0, name="restart", target="sc-1", action="heal"),
    ]
    first, second = figures.failovers(History(events))
    assert (first.target, first.new_epoch) == ("sc-2", None)
    assert (second.target, second.new_epoch, second.new_leader) == ("sc-1", 4, "sc-2")
