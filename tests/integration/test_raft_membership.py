"""The Raft group grows and shrinks while it serves: real pysyncobj nodes on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ha_sc.kv.raft import RaftKv
from ha_sc.kv.raft_membership import LeavingMemberLeads, MembershipError
from tests.net import free_addresses
from tests.waiting import eventually

pytestmark = [pytest.mark.raft, pytest.mark.timeout(60)]


class Group:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.addresses = free_addresses(5)
        self.nodes: dict[str, RaftKv] = {}

    def start(self, address: str, peers: list[str]) -> RaftKv:
        index = self.addresses.index(address)
        node = RaftKv(address, peers, self.data_dir / f"node{index}")
        self.nodes[address] = node
        return node

    def leader(self) -> RaftKv:
        leaders = [n for n in self.nodes.values() if n.is_raft_leader()]
        assert len(leaders) == 1, [n.address for n in leaders]
        return leaders[0]

    async def stop(self, address: str) -> None:
        await self.nodes.pop(address).close()


@pytest.fixture
async def group(tmp_path: Path) -> AsyncIterator[Group]:
    group = Group(tmp_path)
    first = group.addresses[:3]
    for address in first:
        group.start(address, [a for a in first if a != address])
    try:
        await asyncio.gather(*(n.wait_ready() for n in group.nodes.values()))
        yield group
    finally:
        await asyncio.gather(*(n.close() for n in group.nodes.values()))


async def test_a_started_node_joins_once_added_and_catches_up(group: Group) -> None:
    members = group.addresses[:3]
    kv = group.nodes[members[0]]
    for n in range(20):
        await kv.create("topics", f"t{n}", b"{}")
    newcomer_address = group.addresses[3]
    newcomer = group.start(newcomer_address, members)

    await asyncio.sleep(0.5)  # not a member yet: the group ignores it, nothing moves
    assert newcomer.revision == 0
    assert newcomer_address not in kv.members()

    assert await group.nodes[members[1]].add_member(newcomer_address)  # a follower or not
    await eventually(lambda: newcomer.revision == kv.revision)
    await eventually(lambda: all(newcomer_address in n.members() for n in group.nodes.values()))
    assert newcomer.members() == set(group.addresses[:4])
    assert not await kv.add_member(newcomer_address)  # already in: nothing to do

    revision = await newcomer.create("topics", "written-by-the-newcomer", b"{}")
    await eventually(lambda: all(n.revision >= revision for n in group.nodes.values()))


async def test_members_leave_one_by_one_and_the_rest_keeps_committing(group: Group) -> None:
    leader = group.leader()
    follower = next(n for n in group.nodes.values() if n is not leader)
    with pytest.raises(MembershipError, match="cannot remove itself"):
        await leader.remove_member(leader.address)

    # the Raft leader leaves: first it hands leadership over, then another member removes it
    await leader.hand_over_leadership()
    assert not leader.is_raft_leader()
    remover = next(n for n in group.nodes.values() if n is not leader)
    assert await remover.remove_member(leader.address)
    await group.stop(leader.address)
    await eventually(lambda: all(len(n.members()) == 2 for n in group.nodes.values()))

    revision = await follower.create("topics", "after-the-leader-left", b"{}")
    await eventually(lambda: all(n.revision >= revision for n in group.nodes.values()))

    # down to one: a majority of one still commits
    last, leaving = sorted(group.nodes.values(), key=lambda n: n.is_raft_leader(), reverse=True)
    await leaving.hand_over_leadership()
    assert await last.remove_member(leaving.address)
    await group.stop(leaving.address)
    await eventually(last.is_raft_leader)
    assert last.members() == {last.address}
    assert await last.create("topics", "alone", b"{}") > revision


async def test_a_member_leading_again_after_a_hand_over_is_removed_once_it_hands_over_again(
    group: Group,
) -> None:
    leaving = group.leader()
    await leaving.hand_over_leadership()
    successor = group.nodes[str(leaving.raft_leader())]  # known as soon as it returns
    assert successor is not leaving

    # leadership comes back before the removal: the hand-over's election lost to it
    await successor.hand_over_leadership(leaving.address)
    await eventually(leaving.is_raft_leader)
    remover = next(n for n in group.nodes.values() if n not in (leaving, successor))
    await eventually(lambda: remover.raft_leader() == leaving.address)
    with pytest.raises(LeavingMemberLeads, match="hand leadership over"):
        await remover.remove_member(leaving.address)  # at once, not after retrying 10 s

    await leaving.hand_over_leadership()
    assert await remover.remove_member(leaving.address)
    await group.stop(leaving.address)
    await eventually(lambda: all(len(n.members()) == 2 for n in group.nodes.values()))
    revision = await remover.create("topics", "after-the-leader-left", b"{}")
    await eventually(lambda: all(n.revision >= revision for n in group.nodes.values()))
