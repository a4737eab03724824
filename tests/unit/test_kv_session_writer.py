"""How a Raft KV write is sent: under one tag, again after any failure, until answered.
The command is a fake called as pysyncobj calls a replicated method (``callback=``), in
front of a real SessionTable standing in for the state machine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pysyncobj import FAIL_REASON

from ha_sc.kv.api import KeyExists, KvUnavailable
from ha_sc.kv.session_table import CommandTag, SessionTable
from ha_sc.kv.session_writer import SessionWriter

Callback = Callable[[Any, int], None]


class Replicated:
    """A create applied through a session table; each send may first fail in a given way
    (with the command applied or not), or get no answer at all."""

    def __init__(self, table: SessionTable | None = None) -> None:
        self.table = table or SessionTable()
        self.tags: list[CommandTag] = []
        self.applied: list[str] = []
        self.plan: list[tuple[int | None, bool]] = []
        """Per send: the failure to report (None: none, answer), and whether it applied."""

    def create(self, key: str, tag: tuple[str, int, int, float], *, callback: Callback) -> None:
        self.tags.append(CommandTag(*tag))
        failure, applies = self.plan.pop(0) if self.plan else (FAIL_REASON.SUCCESS, True)
        answer = self.table.run(CommandTag(*tag), lambda: self._apply(key)) if applies else None
        if failure is None:
            return  # never answered
        callback(answer if failure == FAIL_REASON.SUCCESS else None, failure)

    def _apply(self, key: str) -> int | KeyExists:
        if key in self.applied:
            return KeyExists("topics", key)
        self.applied.append(key)
        return len(self.applied)


def writer(**options: Any) -> SessionWriter:
    settings: dict[str, Any] = {"commit_timeout": 2.0, "resend_after": 0.05}
    settings.update(options)
    return SessionWriter("raft node test", **settings)


@pytest.mark.parametrize(
    "failure",
    [FAIL_REASON.LEADER_CHANGED, FAIL_REASON.UNKNOWN_OUTCOME, None],
    ids=["leader-changed", "unknown-outcome", "no-answer"],
)
async def test_a_write_applied_but_not_answered_is_sent_again_and_applied_once(
    failure: int | None,
) -> None:
    command, sender = Replicated(), writer()
    command.plan = [(failure, True)]
    assert await sender.write(command.create, "orders") == 1
    assert command.applied == ["orders"]
    assert len(command.tags) == 2 and command.tags[0][:2] == command.tags[1][:2]
    assert sender.resent == 1


async def test_a_write_never_logged_is_sent_again() -> None:
    command, sender = Replicated(), writer()
    command.plan = [(FAIL_REASON.MISSING_LEADER, False), (FAIL_REASON.NOT_LEADER, False)]
    assert await sender.write(command.create, "orders") == 1
    assert command.applied == ["orders"] and len(command.tags) == 3


async def test_each_write_takes_the_next_number_and_the_floor_follows_the_answers() -> None:
    command, sender = Replicated(), writer()
    await sender.write(command.create, "a")
    await sender.write(command.create, "b")
    assert [(t.seq, t.floor) for t in command.tags] == [(1, 1), (2, 2)]


async def test_a_refusal_is_raised_as_it_was_first_answered() -> None:
    command, sender = Replicated(), writer()
    command.applied.append("orders")  # created by someone else
    command.plan = [(FAIL_REASON.LEADER_CHANGED, True)]
    with pytest.raises(KeyExists):
        await sender.write(command.create, "orders")


async def test_a_write_in_an_expired_session_never_sent_before_goes_in_a_new_one() -> None:
    command, sender = Replicated(SessionTable(ttl=10.0)), writer()
    await sender.write(command.create, "a")
    old = sender.session.client
    command.table.run(CommandTag("other", 1, 1, 1e12), lambda: 0)  # log time jumps ahead
    assert await sender.write(command.create, "b") == 2
    assert sender.session.client != old
    assert command.tags[-1] == CommandTag(sender.session.client, 1, 1, command.tags[-1][3])


async def test_a_write_that_may_have_applied_in_an_expired_session_is_of_unknown_outcome() -> None:
    command, sender = Replicated(SessionTable(ttl=10.0)), writer()
    await sender.write(command.create, "a")

    def expire_then_leader_changed(key: str, tag: Any, *, callback: Callback) -> None:
        command.table.run(CommandTag("other", 1, 1, 1e12), lambda: 0)
        command.create(key, tag, callback=callback)

    command.plan = [(FAIL_REASON.LEADER_CHANGED, False)]
    with pytest.raises(KvUnavailable, match="no longer known"):
        await sender.write(expire_then_leader_changed, "b")
    assert command.applied == ["a"]


async def test_a_write_never_answered_ends_as_unavailable_saying_it_may_have_applied() -> None:
    command, sender = Replicated(), writer(commit_timeout=0.3)
    command.plan = [(None, True)] * 100
    with pytest.raises(KvUnavailable, match="may have been applied"):
        await sender.write(command.create, "orders")
    assert command.applied == ["orders"]  # applied once, however many sends
    assert len(command.tags) > 1 and len({t[:2] for t in command.tags}) == 1
