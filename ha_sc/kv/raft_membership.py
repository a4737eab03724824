"""Growing and shrinking the Raft group of a running replica set, one member at a time.

A change is one Raft log entry (pysyncobj's single-server membership change):
members apply it as soon as it is appended, and only one may be in flight, so
each call waits until its entry has committed before the next may start. A
node that is not (yet) a member cannot disturb the group: members drop its
connections until its ``add`` entry reaches them.

Growing: start the new replica with every current member as its peer, then
``add_member`` its address on any member (a follower forwards it to the Raft
leader). Shrinking: the leaving replica first hands Raft leadership to a
caught-up member if it holds it (``hand_over_leadership``: a Raft leader cannot
remove itself), then another member calls ``remove_member`` on it; that member
sees the entry commit, which the leaving one may not (the leader stops sending
to it as soon as the entry is appended). Should the leaving replica lead again
by then, ``remove_member`` raises ``LeavingMemberLeads`` at once: the hand-over
must be made again before the removal can commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj

from election.raft_node import peer_node, submit_membership

log = logging.getLogger(__name__)

PARTNER_STATUS = "partner_node_status_server_"
ASK_AGAIN_AFTER = 0.2
"""Seconds between two transfer requests while this node still (or again) leads."""


class MembershipError(Exception):
    """A membership change that could not be made; the message says why."""


class LeavingMemberLeads(MembershipError):
    """The member to remove is the Raft leader, which refuses to remove itself: it must
    hand leadership over (``hand_over_leadership`` on it) before another member retries."""


def members(node: SyncObj) -> set[str]:
    """The addresses of every member of the Raft group as this node knows it, itself included."""
    status: dict[str, Any] = node.getStatus()
    others = {key.removeprefix(PARTNER_STATUS) for key in status if key.startswith(PARTNER_STATUS)}
    return {str(node.selfNode), *others}


async def add_member(node: SyncObj, peer: str, *, timeout: float = 10.0) -> bool:
    """Add ``peer`` (``host:port`` or ``host:port@dial``); False if it was in already."""
    target = peer_node(peer)
    if str(target.address) in members(node):
        return False
    await _change(node, node.addNodeToCluster, target, "add", timeout)
    log.info("raft member %s added", target.address)
    return True


async def remove_member(node: SyncObj, address: str, *, timeout: float = 10.0) -> bool:
    """Remove the member at ``address`` (not this node); False if it was not a member."""
    if address == str(node.selfNode):
        raise MembershipError("a node cannot remove itself; call leave() on it")
    if address not in members(node):
        return False
    await _change(
        node,
        node.removeNodeFromCluster,
        peer_node(address),
        "remove",
        timeout,
        refused=lambda: _leads(node, address),
    )
    log.info("raft member %s removed", address)
    return True


async def hand_over_leadership(
    node: SyncObj, *, to: str | None = None, timeout: float = 5.0
) -> None:
    """Make another caught-up member the Raft leader if this node is it (a Raft leader
    cannot be removed from its group); returns once another member is known as the leader.

    A leader asked to transfer only steps down when the target starts its election;
    if that election does not finish, this node (whose log is the most complete) may
    win the next term back, so the transfer is asked again whenever it leads again:
    first to ``to`` (if given and a member), then to whichever member is most caught up.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    me = str(node.selfNode)
    target = to if to is not None and to in members(node) and to != me else None
    asked_at: float | None = None
    while not _led_by_another(node):
        if loop.time() > deadline:
            raise MembershipError(f"could not hand Raft leadership over within {timeout:g} s")
        if node._isLeader() and (asked_at is None or loop.time() - asked_at >= ASK_AGAIN_AFTER):
            node.transferLeadership(target if asked_at is None else None)
            asked_at = loop.time()
        await asyncio.sleep(0.02)


def raft_leader(node: SyncObj) -> str | None:
    """The Raft leader this node last heard of, if any."""
    leader = node._getLeader()
    return None if leader is None else str(leader)


def _led_by_another(node: SyncObj) -> bool:
    leader = raft_leader(node)
    return leader is not None and leader != str(node.selfNode) and not node._isLeader()


def _leads(node: SyncObj, address: str) -> MembershipError | None:
    """Why a removal of ``address`` the Raft leader denied cannot succeed by retrying:
    ``address`` is that leader."""
    if raft_leader(node) != address:
        return None
    return LeavingMemberLeads(
        f"{address} is the Raft leader and cannot remove itself: it must hand leadership "
        "over (POST /cluster/step-down on its replica) before it is removed"
    )


async def _change(
    node: SyncObj,
    method: Any,
    target: Any,
    what: str,
    timeout: float,
    *,
    refused: Callable[[], MembershipError | None] = lambda: None,
) -> None:
    """Submit one membership entry, again while an earlier change is still committing;
    a denial that ``refused`` explains is raised at once instead."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        error = await submit_membership(method, target, timeout=max(0.1, deadline - loop.time()))
        if error == FAIL_REASON.SUCCESS:
            return
        if error == FAIL_REASON.REQUEST_DENIED and (reason := refused()) is not None:
            raise reason
        if loop.time() > deadline:
            raise MembershipError(
                f"raft membership {what} of {target.address} not committed within "
                f"{timeout:g} s (last answer: {error})"
            )
        await asyncio.sleep(0.1)  # no leader yet, or a change in flight: try again
