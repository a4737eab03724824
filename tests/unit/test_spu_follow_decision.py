"""An SPU's answer to a leader notice, and when an SC replica sends one."""

from __future__ import annotations

import pytest

from ha_sc.api.addresses import ReplicaAddresses
from ha_sc.api.replica_view import KnownLeader
from ha_sc.protocol import LeaderNotice, encode_message, sc_message_decoder
from ha_sc.sc.leader_watch import notice_due
from ha_sc.spu.follow import MoveTo, RefuseStale, Stay, on_leader_notice

NEW = "127.0.0.1:9104"


def decide(
    epoch: int, *, highest: int = 5, moved_for: int = 0, session_with: str | None = None
) -> MoveTo | Stay | RefuseStale:
    return on_leader_notice(
        epoch=epoch,
        leader_private=NEW,
        highest_epoch=highest,
        moved_for=moved_for,
        session_with=session_with,
    )


def test_a_newer_leader_is_followed_at_once() -> None:
    assert decide(6) == MoveTo(NEW, 6)


def test_a_notice_below_the_fence_is_refused() -> None:
    assert isinstance(decide(4), RefuseStale)


def test_the_leader_already_followed_changes_nothing() -> None:
    assert isinstance(decide(5), Stay)


def test_each_replica_telling_of_the_same_win_moves_the_spu_once() -> None:
    assert decide(6, moved_for=0) == MoveTo(NEW, 6)
    assert isinstance(decide(6, moved_for=6), Stay)
    assert decide(7, moved_for=6) == MoveTo(NEW, 7)


def test_a_session_already_with_the_named_leader_is_kept() -> None:
    assert isinstance(decide(6, session_with=NEW), Stay)
    assert decide(6, session_with="127.0.0.1:9004") == MoveTo(NEW, 6)


def leader(epoch: int, private: str = NEW) -> KnownLeader:
    return KnownLeader("sc-2", epoch, ReplicaAddresses("127.0.0.1:9103", private))


def test_a_replica_tells_of_a_leader_newer_than_it_last_told() -> None:
    assert notice_due(leader(6), last_told=5) == LeaderNotice(epoch=6, leader_private=NEW)
    assert notice_due(leader(6), last_told=6) is None
    assert notice_due(None, last_told=0) is None


def test_a_leader_without_a_private_address_is_not_told_of() -> None:
    assert notice_due(leader(6, private=""), last_told=0) is None


def test_a_leader_notice_crosses_the_wire() -> None:
    notice = LeaderNotice(epoch=7, leader_private=NEW)
    assert sc_message_decoder().feed(encode_message(notice)) == [notice]


def test_a_notice_without_an_address_is_malformed() -> None:
    with pytest.raises(ValueError, match="leader_private"):
        LeaderNotice(epoch=7, leader_private="")
