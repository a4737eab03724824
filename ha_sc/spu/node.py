"""One SPU process: the link to the SC, the state file, and the data plane.

Runs until SIGTERM or SIGINT (exit 0) or until one of its tasks fails (exit 1).
On stopping it closes the SC connection and the data ports, closes every replica
log, and writes its state a last time. The data plane hears of every change to the
control state (``ControlState``'s change hook) and never waits on the SC link.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from ha_sc.awake import watch_loop
from ha_sc.heap import keep_collections_short
from ha_sc.spu.control_state import ControlState
from ha_sc.spu.dataplane.plane import DataPlane
from ha_sc.spu.metrics import spu_metrics
from ha_sc.spu.replica_status import OffsetSource
from ha_sc.spu.sc_link import ScLink
from ha_sc.spu.settings import SpuSettings
from ha_sc.spu.state_file import StateFile, read_state
from ha_sc.spu.state_replicas import ReplicaLines
from ha_sc.tasks import Supervisor
from ha_sc.telemetry.metrics_http import MetricsServer

log = logging.getLogger("ha_sc.spu")


def restored_epoch(settings: SpuSettings) -> int:
    """The highest epoch an earlier run of this SPU recorded, or 0."""
    doc = read_state(settings.state_file)
    if doc is None or doc.get("id") != settings.spu_id:
        return 0
    epoch = doc.get("highest_epoch")
    return epoch if isinstance(epoch, int) and epoch > 0 else 0


class SpuNode:
    """The SPU process."""

    def __init__(self, settings: SpuSettings, *, offsets: OffsetSource | None = None) -> None:
        self.settings = settings
        self.state = ControlState(
            settings.spu_id,
            highest_epoch=restored_epoch(settings),
            public_address=settings.public_address,
            private_address=settings.private_address,
            on_change=self._state_changed,
            check_fetches=settings.token_file is not None,
        )
        self.state_file = StateFile(
            settings.state_file,
            self._document,
            interval=settings.state_interval,
            replicas=ReplicaLines(self.state.replicas),
        )
        self.dataplane = DataPlane(settings, self.state)
        self.link = ScLink(settings, self.state, offsets or self.dataplane.offsets)
        self.supervisor = Supervisor()
        self.metrics = (
            None
            if settings.metrics_address is None
            else MetricsServer(spu_metrics(self.state, self.dataplane), settings.metrics_address)
        )
        self._stop = asyncio.Event()

    def _state_changed(self) -> None:
        self.state_file.mark_changed()
        self.dataplane.notify()

    def _document(self) -> dict[str, object]:
        return {
            **self.state.summary(),
            "public": self.settings.public_address,
            "private": self.settings.private_address,
        }

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        settings = self.settings
        if self.state.highest_epoch:
            log.info(
                "spu %d: restored highest epoch %d from %s",
                settings.spu_id,
                self.state.highest_epoch,
                settings.state_file,
            )
        try:
            self.state_file.write()
        except OSError as exc:
            log.critical("spu %d: cannot write its state file: %s", settings.spu_id, exc)
            return 1
        if self.metrics is not None:
            try:
                await self.metrics.start()
            except OSError as cannot:
                log.critical("spu %d cannot serve its metrics: %s", settings.spu_id, cannot)
                return 1
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        log.info(
            "spu %d starting: sc replicas %s, state file %s",
            settings.spu_id,
            ", ".join(settings.sc_addresses),
            settings.state_file,
        )
        if settings.tls is None:
            log.warning(
                "spu %d: data ports and links to the SC unencrypted (no --tls-cert): anyone "
                "on the path reads and alters their traffic",
                settings.spu_id,
            )
        else:
            log.info(
                "spu %d: TLS on both data ports and on the links to the SC and leaders%s",
                settings.spu_id,
                "; followers need a certificate signed by the CA"
                if settings.tls.client_auth
                else "",
            )
        try:
            self.supervisor.start("sc-link", self.link.run())
            self.supervisor.start("spu-state-file", self.state_file.run())
            self.supervisor.start("heap-freezer", keep_collections_short())
            self.supervisor.start("loop-monitor", watch_loop())
            self.dataplane.start(self.supervisor)
            stop = asyncio.create_task(self._stop.wait(), name="await-stop")
            failed = asyncio.create_task(self.supervisor.failed.wait(), name="await-failure")
            try:
                await asyncio.wait({stop, failed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                failed.cancel()
        finally:
            if self.metrics is not None:
                await self.metrics.stop()
            await self.supervisor.stop()
            await self._close_dataplane()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            self.state.disconnected()
            self._final_write()
        if self.supervisor.failure is not None:
            log.critical("spu %d stopping: %s", settings.spu_id, self.supervisor.failure)
            return 1
        log.info("spu %d stopped", settings.spu_id)
        return 0

    async def _close_dataplane(self) -> None:
        try:
            await self.dataplane.close()
        except Exception:
            log.exception("spu %d: closing the data plane failed", self.settings.spu_id)

    def _final_write(self) -> None:
        try:
            self.state_file.write()
        except OSError as exc:
            log.warning(
                "spu %d: last write of its state file failed: %s", self.settings.spu_id, exc
            )
