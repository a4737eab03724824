"""Who leads, as every SC replica tells it: ``GET /leader`` of each replica every 50 ms,
a ``leader`` event each time what a replica says changes (role, epoch, named leader)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from chaos.history.events import Leader
from chaos.history.recorder import Recorder

INTERVAL = 0.05
TIMEOUT = 0.3
"""A replica that does not answer within this is ``unreachable`` (stopped, paused)."""


def observed(replica: str, report: dict[str, Any] | None, t: float) -> Leader:
    """The event for one answer (None: no answer)."""
    if report is None:
        return Leader(t=t, replica=replica, role="unreachable")
    named = report.get("leader") or {}
    role = "leader" if report.get("role") == "leader" else "standby"
    epoch = named.get("epoch")
    return Leader(
        t=t,
        replica=replica,
        role=role,
        epoch=int(epoch) if epoch is not None else None,
        leader=named.get("replica_id"),
    )


class LeadershipWatch:
    """Polls every replica's public API; run ``run`` as a task, cancel it to stop."""

    def __init__(self, public: dict[str, str], recorder: Recorder) -> None:
        self._public = public
        self._recorder = recorder
        self.polls = 0

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(
                *(self._watch(session, name, address) for name, address in self._public.items())
            )

    async def _watch(self, session: aiohttp.ClientSession, replica: str, address: str) -> None:
        last: tuple[object, ...] | None = None
        while True:
            started = time.monotonic()
            report = await leader_report(session, address)
            event = observed(replica, report, time.time())
            self.polls += 1
            key = (event.role, event.epoch, event.leader)
            if key != last:
                self._recorder.record(event)
                last = key
            await asyncio.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))


async def leader_report(session: aiohttp.ClientSession, address: str) -> dict[str, Any] | None:
    """``GET /leader`` of the replica whose public API is at ``address``; None if it
    does not answer well."""
    try:
        async with session.get(f"http://{address}/leader") as response:
            if response.status != 200:
                return None
            body: dict[str, Any] = await response.json()
            return body
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
