"""The Raft KV's client sessions: a write sent several times is applied once, its copies get
its first answer, and the table is bounded, expires by log time only, and survives pickling
(a pysyncobj snapshot)."""

from __future__ import annotations

import copy
import pickle

from election.guard import Guard
from ha_sc.kv.api import KeyExists, RevisionConflict, StaleGuard
from ha_sc.kv.client_session import ClientSession
from ha_sc.kv.session_table import AnswerForgotten, CommandTag, SessionExpired, SessionTable


class Applier:
    """Counts applies and answers the next revision, or a given refusal."""

    def __init__(self) -> None:
        self.applied: list[str] = []

    def __call__(self, name: str, answer: object = None) -> object:
        def apply() -> object:
            self.applied.append(name)
            return len(self.applied) if answer is None else answer

        return apply  # type: ignore[return-value]


def tag(client: str, seq: int, floor: int = 1, at: float = 100.0) -> CommandTag:
    return CommandTag(client, seq, floor, at)


def test_a_copy_is_answered_with_the_first_answer_and_not_applied_again() -> None:
    table, apply = SessionTable(), Applier()
    first = table.run(tag("a", 1), apply("create orders"))
    again = table.run(tag("a", 1, at=101.0), apply("create orders"))
    assert first == again == 1
    assert apply.applied == ["create orders"]


def test_a_refusal_is_the_answer_a_copy_gets_too() -> None:
    table, apply = SessionTable(), Applier()
    refused = RevisionConflict("topics", "orders", 3, 4)
    assert table.run(tag("a", 1), apply("update", refused)) is refused
    assert table.run(tag("a", 1), apply("update")) is refused
    assert apply.applied == ["update"]


def test_writes_in_flight_together_apply_in_any_order() -> None:
    table, apply = SessionTable(), Applier()
    assert table.run(tag("a", 2), apply("second")) == 1
    assert table.run(tag("a", 1), apply("first")) == 2
    assert table.run(tag("a", 3), apply("third")) == 3
    assert apply.applied == ["second", "first", "third"]


def test_a_late_copy_below_the_floor_is_not_applied() -> None:
    table, apply = SessionTable(), Applier()
    table.run(tag("a", 1), apply("first"))
    # the client got its answer for 1 (floor 2) and sent 2; then a stale copy of 1 arrives
    table.run(tag("a", 2, floor=2), apply("second"))
    late = table.run(tag("a", 1), apply("first"))
    assert isinstance(late, AnswerForgotten)
    assert apply.applied == ["first", "second"]


def test_answers_below_the_floor_are_dropped() -> None:
    table, apply = SessionTable(), Applier()
    for seq in range(1, 6):
        table.run(tag("a", seq, floor=seq), apply(f"w{seq}"))
    session = table.session("a")
    assert session is not None
    assert session.floor == 5 and set(session.answers) == {5}


def test_a_forgotten_client_is_refused_rather_than_applied_maybe_twice() -> None:
    table, apply = SessionTable(), Applier()
    answer = table.run(tag("gone", 7, floor=4), apply("w7"))
    assert isinstance(answer, SessionExpired)
    assert apply.applied == [] and table.session("gone") is None


def test_sessions_expire_by_the_log_s_proposal_time() -> None:
    table, apply = SessionTable(ttl=60.0), Applier()
    table.run(tag("quiet", 1, at=1000.0), apply("q1"))
    table.run(tag("busy", 1, at=1050.0), apply("b1"))
    # a proposal stamped earlier (a proposer whose clock lags) does not move time back
    table.run(tag("busy", 2, at=900.0), apply("b2"))
    assert table.now == 1050.0 and table.session("quiet") is not None
    table.run(tag("busy", 3, at=1061.0), apply("b3"))
    assert table.session("quiet") is None and table.session("busy") is not None
    # its next write (floor 2: it had an answer) cannot be told apart from a copy
    assert isinstance(table.run(tag("quiet", 2, floor=2, at=1062.0), apply("q2")), SessionExpired)


def test_the_least_recently_active_client_goes_first_when_full() -> None:
    table, apply = SessionTable(max_clients=2), Applier()
    table.run(tag("a", 1), apply("a1"))
    table.run(tag("b", 1), apply("b1"))
    table.run(tag("a", 2), apply("a2"))
    table.run(tag("c", 1), apply("c1"))
    assert table.session("b") is None
    assert table.session("a") is not None and table.session("c") is not None
    assert len(table) == 2


def test_a_client_with_a_stuck_write_keeps_a_bounded_number_of_answers() -> None:
    table, apply = SessionTable(max_answers=10), Applier()
    for seq in range(2, 14):  # write 1 never arrives, so the floor stays at 1
        table.run(tag("a", seq), apply(f"w{seq}"))
    session = table.session("a")
    assert session is not None
    assert len(session.answers) <= 10 and session.floor > 2
    # write 1 arriving now is below the raised floor: refused, never applied
    assert isinstance(table.run(tag("a", 1), apply("w1")), AnswerForgotten)
    assert "w1" not in apply.applied


def test_replicas_fed_the_same_log_keep_the_same_table() -> None:
    log = [tag("a", 1), tag("b", 1, at=130.0), tag("a", 1), tag("a", 2, floor=2, at=200.0)]
    tables = [SessionTable(ttl=50.0), SessionTable(ttl=50.0)]
    for table in tables:
        apply = Applier()
        for entry in log:
            table.run(entry, apply(entry.client))
    assert pickle.dumps(tables[0]) == pickle.dumps(tables[1])
    assert tables[0].session("b") is None  # expired at t=200 in both


def test_the_table_and_its_refusal_answers_survive_a_snapshot() -> None:
    table, apply = SessionTable(), Applier()
    table.run(tag("a", 1), apply("create", KeyExists("topics", "orders")))
    table.run(tag("a", 2), apply("update", StaleGuard(Guard("sc", 3))))
    table.run(tag("a", 3), apply("delete"))
    restored: SessionTable = pickle.loads(pickle.dumps(table))
    exists = restored.run(tag("a", 1), apply("create"))
    stale = restored.run(tag("a", 2), apply("update"))
    assert isinstance(exists, KeyExists) and (exists.kind, exists.key) == ("topics", "orders")
    assert str(exists) == "topics/orders already exists"
    assert isinstance(stale, StaleGuard) and stale.guard == Guard("sc", 3)
    assert restored.run(tag("a", 3), apply("delete")) == 3
    assert apply.applied == ["create", "update", "delete"]


def test_the_client_floor_is_its_lowest_write_still_waiting() -> None:
    session = ClientSession("c1")
    one, two, three = session.begin(), session.begin(), session.begin()
    assert (one, two, three) == (1, 2, 3) and session.floor == 1
    session.end(two)
    assert session.floor == 1
    session.end(one)
    assert session.floor == 3
    session.end(three)
    assert session.floor == 4
    assert session.tag(4, 12.5) == CommandTag("c1", 4, 4, 12.5)


def test_a_kv_error_copies_with_its_fields() -> None:
    conflict = RevisionConflict("topics", "orders", 3, 4)
    again = copy.copy(conflict)
    assert again is not conflict and type(again) is RevisionConflict
    assert (again.kind, again.key, again.expected, again.actual, str(again)) == (
        "topics",
        "orders",
        3,
        4,
        str(conflict),
    )
