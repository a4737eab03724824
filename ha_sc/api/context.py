"""What every handler of the public API shares: the replica, its settings, its locks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from election.term import Term
from ha_sc.api.problems import ApiProblem
from ha_sc.api.replica_view import KnownLeader, ReplicaView
from ha_sc.controllers.topics.validation import DEFAULT_LIMITS, TopicLimits
from ha_sc.protocol.api_wire import LeaderInfo


@dataclass
class ApiContext:
    view: ReplicaView
    provision_timeout: float
    """Seconds a topic create waits for the topic to be provisioned, unless asked."""
    ready: Callable[[], bool]
    """Whether the cache has done its first full sync."""
    watch_heartbeat: float
    """Seconds between heartbeat lines of an idle watch stream."""
    limits: TopicLimits = DEFAULT_LIMITS
    """The partition caps a topic create is checked against."""
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the server shuts down: open watch streams end."""
    spu_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Serialises SPU registrations, so two cannot both claim one SPU id."""
    topic_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Serialises topic creates from their checks until the topic is cached, so the
    name and the partition caps are checked against every create before it."""
    marks_pruned_at: float = float("-inf")
    """When (``time.monotonic()``) a keyed create last pruned the old request marks."""

    def require_ready(self) -> None:
        """Refuse to serve reads from a cache that has not synced yet."""
        if not self.ready():
            raise ApiProblem(503, "this replica's cache has not synced with the KV store yet")

    def leader_epoch(self) -> int | None:
        """The epoch of the leader this replica knows of."""
        term = self.view.term()
        if term is not None:
            return term.epoch
        leader = self.view.leader()
        return None if leader is None else leader.epoch

    def leading_term(self, request: web.Request) -> Term:
        """This replica's term if it leads; else a redirect to the leader, or a 503."""
        term = self.view.term()
        if term is not None and term.is_valid():
            return term
        leader = self.view.leader()
        if leader is None or not leader.addresses.public:
            raise ApiProblem(503, "no leader elected yet", retry=True)
        if leader.replica_id == self.view.replica_id:
            raise ApiProblem(
                503, "this replica was elected leader and is not acting yet, retry", retry=True
            )
        public = leader.addresses.public
        raise ApiProblem(
            307,
            f"replica {self.view.replica_id} is a standby; writes go to the leader "
            f"{leader.replica_id} at {public}",
            headers={"Location": f"{request.scheme}://{public}{request.rel_url}"},
            extra={"leader": leader_info(leader).to_json()},
        )


def leader_info(leader: KnownLeader) -> LeaderInfo:
    return LeaderInfo(
        leader.replica_id, leader.epoch, leader.addresses.public, leader.addresses.private
    )


CONTEXT = web.AppKey("context", ApiContext)


def context(request: web.Request) -> ApiContext:
    return request.app[CONTEXT]
