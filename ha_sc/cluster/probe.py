"""Asking each member of a local cluster how it is, over its public API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp

from ha_sc.cluster.api_session import api_session, api_url
from ha_sc.cluster.layout import ClusterLayout
from ha_sc.cluster.processes import is_running


@dataclass(frozen=True)
class ReplicaReport:
    id: str
    role: str
    """leader, standby or down."""
    epoch: int | None
    revision: int | None
    pid: int | None
    public: str
    private: str
    leader: dict[str, Any] | None


async def probe_replica(
    session: aiohttp.ClientSession, public: str, *, scheme: str = "http"
) -> dict[str, Any] | None:
    try:
        async with session.get(f"{scheme}://{public}/leader") as response:
            if response.status != 200:
                return None
            body: dict[str, Any] = await response.json()
            return body
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None


async def replica_reports(layout: ClusterLayout, timeout: float = 1.0) -> list[ReplicaReport]:
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with api_session(layout, client_timeout) as session:
        answers = await asyncio.gather(
            *(probe_replica(session, r.public, scheme=layout.scheme) for r in layout.replicas)
        )
    reports = []
    for replica, answer in zip(layout.replicas, answers, strict=True):
        alive = is_running(replica.pid)
        if answer is None or not alive:
            reports.append(
                ReplicaReport(
                    replica.id,
                    "down",
                    None,
                    None,
                    replica.pid if alive else None,
                    replica.public,
                    replica.private,
                    None,
                )
            )
            continue
        leader = answer.get("leader")
        role = str(answer.get("role", "standby"))
        epoch = leader.get("epoch") if isinstance(leader, dict) else None
        reports.append(
            ReplicaReport(
                replica.id,
                role,
                epoch,
                answer.get("revision"),
                replica.pid,
                replica.public,
                replica.private,
                leader,
            )
        )
    return reports


async def spu_statuses(layout: ClusterLayout, public: str, timeout: float = 1.0) -> dict[int, str]:
    """SPU id -> resolution, as the replica at ``public`` sees them."""
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    try:
        async with (
            api_session(layout, client_timeout) as session,
            session.get(api_url(layout, public, "/api/v1/spus")) as response,
        ):
            if response.status != 200:
                return {}
            body = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return {}
    return {
        int(item["spec"]["id"]): str(item["status"].get("resolution", "Init"))
        for item in body.get("items", [])
    }
