"""Growing and shrinking a running local replica set.

Growing (``cluster up --replicas N`` with more than are recorded): the new
replicas start one at a time with every recorded replica as a Raft peer, and a
running member adds each one to the Raft group before the next starts. On etcd
a new replica only has to start.

Shrinking (``cluster remove REPLICA``): the replica is asked to step down (a
standby takes the lease; Raft leadership moves to another member), another
member removes it from the Raft group, then it is stopped by its PID and its
data dir deleted: what it held is replicated on the others.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp

from ha_sc.cluster.api_session import api_session, api_url
from ha_sc.cluster.layout import ClusterLayout, ReplicaEntry
from ha_sc.cluster.probe import replica_reports
from ha_sc.cluster.processes import is_running, stop

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=15)


class MembershipFailed(Exception):
    """The replica set could not be changed; the message says why and what is left."""


async def _call(
    layout: ClusterLayout,
    method: str,
    public: str,
    path: str,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    url = api_url(layout, public, path)
    async with (
        api_session(layout, REQUEST_TIMEOUT) as session,
        session.request(method, url, json=body) as response,
    ):
        answer: dict[str, Any] = await response.json()
        if response.status != 200:
            raise MembershipFailed(f"{method} {url}: {answer.get('error', response.status)}")
        return answer


def _running(layout: ClusterLayout, *, besides: str) -> list[ReplicaEntry]:
    return [r for r in layout.replicas if r.id != besides and is_running(r.pid)]


async def join(layout: ClusterLayout, replica: ReplicaEntry, *, timeout: float) -> None:
    """Add the started ``replica`` to the Raft group through a running member, then wait
    until it answers with its cache at the leader's revision."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        for member in _running(layout, besides=replica.id):
            try:
                await _call(
                    layout, "POST", member.public, "/cluster/members", {"raft": replica.raft}
                )
                await _caught_up(layout, replica, deadline)
                return
            except (MembershipFailed, aiohttp.ClientError, TimeoutError, ValueError) as failed:
                last = failed
        await asyncio.sleep(0.5)
    raise MembershipFailed(f"replica {replica.id} did not join in time: {last}")


async def _caught_up(layout: ClusterLayout, replica: ReplicaEntry, deadline: float) -> None:
    while time.monotonic() < deadline:
        reports = {r.id: r for r in await replica_reports(layout)}
        leaders = [r for r in reports.values() if r.role == "leader"]
        mine = reports[replica.id]
        if (
            leaders
            and mine.revision is not None
            and leaders[0].revision is not None
            and mine.revision >= leaders[0].revision
        ):
            return
        await asyncio.sleep(0.2)
    raise MembershipFailed(f"replica {replica.id} joined but its cache did not catch up in time")


async def remove(layout: ClusterLayout, replica_id: str, directory: Path) -> ReplicaEntry:
    """Take ``replica_id`` out of the set, stop it and forget it; returns its entry."""
    leaving = next((r for r in layout.replicas if r.id == replica_id), None)
    if leaving is None:
        known = ", ".join(r.id for r in layout.replicas)
        raise MembershipFailed(f"no replica {replica_id!r} in this cluster (replicas: {known})")
    if len(layout.replicas) == 1:
        raise MembershipFailed(f"{replica_id} is the last replica: use `cluster down` instead")
    others = _running(layout, besides=replica_id)
    if not others:
        raise MembershipFailed(f"no other replica is running to take over from {replica_id}")
    if layout.backend == "raft":
        await _leave_raft(layout, leaving, others)
    elif is_running(leaving.pid):
        await _call(layout, "POST", leaving.public, "/cluster/step-down")
    stop(leaving.pid)
    layout.replicas.remove(leaving)
    layout.save(directory)
    shutil.rmtree(directory / leaving.id, ignore_errors=True)
    return leaving


async def _leave_raft(
    layout: ClusterLayout, leaving: ReplicaEntry, others: list[ReplicaEntry]
) -> None:
    last: Exception | None = None
    # Raft leadership may come back to it before the removal commits: the removal is
    # then refused at once (409) and it is asked to step down again
    for _ in range(5):
        try:
            if is_running(leaving.pid):
                await _call(layout, "POST", leaving.public, "/cluster/step-down")
            await _call(layout, "DELETE", others[0].public, f"/cluster/members/{leaving.raft}")
            return
        except (MembershipFailed, aiohttp.ClientError, TimeoutError, ValueError) as failed:
            last = failed
            await asyncio.sleep(0.5)
    raise MembershipFailed(f"could not remove {leaving.id} from the Raft group: {last}")
