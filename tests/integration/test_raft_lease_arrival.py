"""On real Raft nodes, a lease's silence counts from when its last renewal arrived on a
node: after the holder sent it, before the node applied it (election/raft_lease.py).

Three nodes in this process on loopback, each with a lease table that notes, per grant
or renewal it applies, the time just before it records its own note.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from election.lease_table import LeaseHolder
from election.raft_append import RaftSyncObj
from election.raft_lease import RaftLeases
from election.raft_node import raft_conf, submit
from tests.net import free_addresses
from tests.waiting import eventually

pytestmark = [pytest.mark.raft, pytest.mark.timeout(60)]

RENEWALS = 5


class ApplyClock(RaftLeases):
    """A lease table that keeps when it applied each grant or renewal (local, not replicated)."""

    def __init__(self) -> None:
        self.applied_at: list[float] = []
        super().__init__()

    def _note(self, holder: LeaseHolder) -> None:
        applying = time.monotonic()
        super()._note(holder)
        self.applied_at.append(applying)


@pytest.fixture
def group(tmp_path: Path) -> Iterator[list[tuple[RaftSyncObj, ApplyClock]]]:
    addresses = free_addresses(3)
    members = []
    for n, address in enumerate(addresses):
        leases = ApplyClock()
        conf = raft_conf(address, journalFile=str(tmp_path / f"node{n}.journal"))
        partners = [a for a in addresses if a != address]
        members.append((RaftSyncObj(address, partners, conf=conf, consumers=[leases]), leases))
    yield members
    for node, _ in members:
        node.destroy_synchronous()


async def test_silence_counts_from_after_the_send_and_before_the_apply_on_every_node(
    group: list[tuple[RaftSyncObj, ApplyClock]],
) -> None:
    await eventually(
        lambda: any(node._isLeader() for node, _ in group), timeout=20, what="a Raft leader"
    )
    # the holder's node is a follower: its commands go through the leader to all three
    _, holder_leases = next((n, lease) for n, lease in group if not n._isLeader())
    held = await submit(holder_leases.acquire, "sc", "a", "addr-a", "run-1", timeout=5)
    assert held is not None
    for count in range(1, RENEWALS + 1):
        sent = time.monotonic()
        assert await submit(holder_leases.renew, "sc", held.epoch, timeout=5)
        await eventually(
            lambda count=count: all(  # type: ignore[misc]
                lease.table.renewals("sc") == count for _, lease in group
            ),
            timeout=10,
            what=f"renewal {count} applied on every node",
        )
        for node, lease in group:
            silence = lease.silence("sc")
            assert silence is not None and silence.renewals == count
            applied = lease.applied_at[-1]
            # never before the holder sent it (safety), always before the node applied it
            assert sent <= silence.since < applied, (str(node.selfNode), count)
