"""``/cluster/members`` and ``/cluster/step-down``: growing and shrinking the replica set.

On the Raft backend the replicas form the Raft group of the store, so adding or
removing a replica is a Raft membership change, made here one member at a time.
On etcd a replica joins or leaves just by starting or stopping; these routes then
answer 409. ``step-down`` asks this replica to stop leading (the lease goes to a
standby) and to give up Raft leadership, before it is removed or stopped.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, field_validator

from ha_sc.api.context import context
from ha_sc.api.problems import ApiProblem, parse_body, read_json
from ha_sc.api.replica_view import RaftGroup
from ha_sc.kv.raft_membership import MembershipError
from ha_sc.protocol.api_wire import split_host_port


class AddMember(BaseModel):
    model_config = ConfigDict(extra="forbid")

    raft: str
    """host:port of the new replica's Raft node (``host:port@dial`` through a proxy)."""

    @field_validator("raft")
    @classmethod
    def _address(cls, raft: str) -> str:
        address, _, dial = raft.partition("@")
        split_host_port(address)
        if dial:
            split_host_port(dial)
        return raft


def _group(request: web.Request) -> RaftGroup:
    group = context(request).view.raft_group()
    if group is None:
        raise ApiProblem(
            409,
            "this replica set does not run on Raft: replicas join and leave by starting "
            "and stopping",
        )
    return group


def _members(group: RaftGroup) -> list[str]:
    return sorted(group.members())


async def list_members(request: web.Request) -> web.Response:
    return web.json_response({"members": _members(_group(request))})


async def add_member(request: web.Request) -> web.Response:
    group = _group(request)
    body = parse_body(AddMember, await read_json(request))
    try:
        added = await group.add_member(body.raft)
    except MembershipError as failed:
        raise ApiProblem(503, str(failed), retry=True) from None
    return web.json_response({"added": added, "members": _members(group)})


async def remove_member(request: web.Request) -> web.Response:
    group = _group(request)
    address = request.match_info["address"]
    try:
        split_host_port(address)
    except ValueError as bad:
        raise ApiProblem(400, str(bad), field="address") from None
    try:
        removed = await group.remove_member(address)
    except MembershipError as failed:
        raise ApiProblem(409, str(failed), field="address") from None
    return web.json_response({"removed": removed, "members": _members(group)})


async def step_down(request: web.Request) -> web.Response:
    view = context(request).view
    try:
        await view.step_down()
    except MembershipError as failed:
        raise ApiProblem(503, str(failed), retry=True) from None
    return web.json_response({"replica_id": view.replica_id, "leading": view.term() is not None})
