"""One SC replica process: the KV, the dispatchers that mirror it, a status line."""

from __future__ import annotations

import asyncio
import logging
import signal

from ha_sc.kv.api import KvStore
from ha_sc.kv.raft import RaftKv
from ha_sc.model.kinds import Kind
from ha_sc.sc.kv_backend import open_kv
from ha_sc.sc.settings import ScSettings
from ha_sc.store import GlobalStore, Supervisor, start_dispatchers

log = logging.getLogger("ha_sc.sc")


def status_line(settings: ScSettings, kv: KvStore, cache: GlobalStore) -> str:
    counts = " ".join(f"{kind.value}={len(cache.view(kind))}" for kind in Kind)
    parts = [f"sc {settings.replica_id}", f"backend={settings.backend.value}"]
    if isinstance(kv, RaftKv):
        role = "raft-leader" if kv.is_raft_leader() else "raft-follower"
        parts.append(f"{role} raft_leader={kv.raft_leader()}")
    parts.append(f"revision={cache.revision}")
    return " ".join(parts) + " " + counts


class ScReplica:
    """Runs until SIGTERM/SIGINT or a fatal task failure (then exits non-zero)."""

    def __init__(self, settings: ScSettings) -> None:
        self.settings = settings
        self.cache = GlobalStore()
        self.supervisor = Supervisor()
        self._stop = asyncio.Event()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        kv = await open_kv(self.settings)
        try:
            start_dispatchers(self.cache, kv, self.supervisor)
            self.supervisor.start("status-reporter", self._report(kv))
            stop = asyncio.create_task(self._stop.wait(), name="await-stop")
            failed = asyncio.create_task(self.supervisor.failed.wait(), name="await-failure")
            await asyncio.wait({stop, failed}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            failed.cancel()
            if self.supervisor.failed.is_set():
                log.critical(
                    "sc %s stopping: %s", self.settings.replica_id, self.supervisor.failure
                )
                return 1
            log.info("sc %s stopping on signal", self.settings.replica_id)
            return 0
        finally:
            await self.supervisor.stop()
            await kv.close()

    async def _report(self, kv: KvStore) -> None:
        while True:
            log.info("%s", status_line(self.settings, kv, self.cache))
            await asyncio.sleep(self.settings.status_interval)
