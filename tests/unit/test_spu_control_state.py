"""The SPU's fence on SC messages, given scripted messages: stale epochs are refused and
counted, and nothing in them is applied."""

from __future__ import annotations

import logging

import pytest

from ha_sc.model import Endpoint, SpuSpec
from ha_sc.protocol import Delta, FullSync, ReplicaSpec, SpecCursor
from ha_sc.spu import ControlState, ReplicaRole

ME = 5001


def spu(spu_id: int, port: int = 9005) -> SpuSpec:
    return SpuSpec(
        id=spu_id,
        public_endpoint=Endpoint(host="127.0.0.1", port=port),
        private_endpoint=Endpoint(host="127.0.0.1", port=port + 1),
    )


def spec(partition: str, leader: int, *replicas: int) -> ReplicaSpec:
    return ReplicaSpec(partition=partition, leader=leader, replicas=list(replicas))


def roles(state: ControlState) -> dict[str, ReplicaRole]:
    return {r.partition: r.role for r in state.replicas.replicas()}


def test_messages_at_or_above_the_highest_epoch_apply() -> None:
    changes = []
    state = ControlState(ME, on_change=lambda: changes.append(1))
    assert state.apply(FullSync(epoch=2, spus=[spu(ME)], replicas=[spec("a-0", ME, ME)]))
    assert state.apply(Delta(epoch=2, replicas_changed=[spec("b-0", 5002, 5002, ME)]))
    assert state.apply(Delta(epoch=3, spus_changed=[spu(5002)]))
    assert state.highest_epoch == 3
    assert state.refused == 0
    assert roles(state) == {"a-0": ReplicaRole.LEADER, "b-0": ReplicaRole.FOLLOWER}
    assert set(state.spus) == {ME, 5002}
    assert len(changes) == 3
    assert state.apply(Delta(epoch=3))  # a keepalive: nothing to write down
    assert len(changes) == 3
    assert state.apply(Delta(epoch=4))  # a keepalive from a newer leader: a new epoch
    assert len(changes) == 4


def test_a_stale_message_is_refused_counted_and_not_applied() -> None:
    state = ControlState(ME)
    state.apply(FullSync(epoch=5, spus=[spu(ME)], replicas=[spec("a-0", ME, ME)]))

    assert not state.apply(FullSync(epoch=4, spus=[], replicas=[spec("z-0", ME, ME)]))
    assert not state.apply(Delta(epoch=3, replicas_removed=["a-0"], spus_removed=[ME]))
    assert not state.apply(Delta(epoch=4))  # a stale keepalive too
    assert state.refused == 3
    assert state.highest_epoch == 5
    assert roles(state) == {"a-0": ReplicaRole.LEADER}
    assert set(state.spus) == {ME}

    assert state.apply(Delta(epoch=5, replicas_removed=["a-0"]))
    assert roles(state) == {}
    assert state.refused == 3


def test_a_full_sync_replaces_everything() -> None:
    state = ControlState(ME)
    state.apply(
        FullSync(
            epoch=1,
            spus=[spu(ME), spu(5002)],
            replicas=[spec("a-0", ME, ME), spec("b-0", ME, ME, 5002)],
        )
    )
    state.apply(FullSync(epoch=2, spus=[spu(ME)], replicas=[spec("b-0", 5002, 5002, ME)]))
    assert roles(state) == {"b-0": ReplicaRole.FOLLOWER}
    assert set(state.spus) == {ME}
    assert state.syncs == 2


def test_the_fence_starts_from_a_restored_epoch() -> None:
    state = ControlState(ME, highest_epoch=7)
    assert not state.apply(FullSync(epoch=6, spus=[spu(ME)]))
    assert state.apply(FullSync(epoch=7, spus=[spu(ME)]))
    assert state.refused == 1


def test_a_delta_updates_and_removes_spus() -> None:
    state = ControlState(ME)
    state.apply(FullSync(epoch=1, spus=[spu(ME), spu(5002)]))
    state.apply(Delta(epoch=1, spus_changed=[spu(5002, port=7000)], spus_removed=[ME]))
    assert set(state.spus) == {5002}
    assert state.spus[5002].public_endpoint.port == 7000


def test_the_state_document_says_whom_it_follows_and_what_it_holds() -> None:
    state = ControlState(ME)
    state.apply(FullSync(epoch=4, spus=[spu(ME)], replicas=[spec("a-0", 5002, 5002, ME)]))
    state.apply(FullSync(epoch=3, spus=[]))
    state.connected("127.0.0.1:9004")
    doc = state.snapshot()
    assert doc == {
        "id": ME,
        "sc": "127.0.0.1:9004",
        "highest_epoch": 4,
        "refused": 1,
        "syncs": 1,
        "spus": [ME],
        "replicas": [
            {"partition": "a-0", "role": "follower", "leader": 5002, "replicas": [5002, ME]}
        ],
    }
    state.disconnected()
    assert state.snapshot()["sc"] is None
    assert state.snapshot()["replicas"]  # kept while no SC is reachable


def test_a_mismatched_own_endpoint_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ha_sc.spu")
    state = ControlState(ME, public_address="127.0.0.1:9005", private_address="10.0.0.1:9006")
    state.apply(FullSync(epoch=1, spus=[spu(ME)]))
    expected = "private endpoint 127.0.0.1:9006 for this spu, but it was started with 10.0.0.1:9006"
    assert expected in caplog.text
    assert "public endpoint" not in caplog.text


def at(topics: int, partitions: int) -> SpecCursor:
    return SpecCursor(topics=topics, partitions=partitions)


def test_the_cursor_follows_what_was_applied_and_a_resync_leaves_what_the_leader_holds() -> None:
    state = ControlState(ME)
    assert state.cursor is None  # nothing held: the first register asks for a full sync
    state.apply(
        FullSync(
            epoch=2,
            spus=[spu(ME), spu(5002)],
            replicas=[spec("a-0", ME, ME), spec("b-0", ME, ME, 5002)],
            cursor=at(3, 7),
        )
    )
    assert state.cursor == at(3, 7)
    state.apply(Delta(epoch=2, cursor=at(3, 9)))  # a keepalive moves it too
    assert state.cursor == at(3, 9)
    assert not state.apply(Delta(epoch=1, cursor=at(3, 12)))  # refused: nothing moves
    assert state.cursor == at(3, 9)

    resync = Delta(
        epoch=3,
        since=at(3, 9),
        cursor=at(4, 15),
        spus_changed=[spu(ME)],  # 5002 was unregistered meanwhile
        replicas_changed=[spec("b-0", 5002, ME, 5002), spec("c-0", ME, ME)],
        replicas_held=["b-0", "c-0"],  # a-0 was deleted meanwhile
    )
    assert state.apply(resync)
    assert state.resync_mismatch is None
    assert state.cursor == at(4, 15)
    assert set(state.spus) == {ME}
    assert roles(state) == {"b-0": ReplicaRole.FOLLOWER, "c-0": ReplicaRole.LEADER}
    assert (state.syncs, state.resyncs) == (1, 1)


@pytest.mark.parametrize(
    ("since", "held", "why"),
    [
        (at(3, 8), ["a-0", "c-0"], "it starts at topics@3,partitions@8, not at"),
        (at(3, 7), ["a-0", "c-0", "d-0"], "it leaves 2 local replicas, the leader has 3"),
    ],
)
def test_a_resync_that_does_not_add_up_drops_the_cursor(
    since: SpecCursor, held: list[str], why: str
) -> None:
    state = ControlState(ME)
    state.apply(FullSync(epoch=2, replicas=[spec("a-0", ME, ME)], cursor=at(3, 7)))
    resync = Delta(
        epoch=3,
        since=since,
        cursor=at(3, 20),
        replicas_changed=[spec("c-0", ME, ME)],
        replicas_held=held,
    )
    assert state.apply(resync)
    assert state.resync_mismatch is not None and why in state.resync_mismatch
    assert state.cursor is None  # so the next register asks for a full sync
