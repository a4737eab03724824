"""The SPU's data plane: its partition replicas, its two ports, and their upkeep.

``SpuNode`` builds one beside its control link, calls ``notify`` whenever the control
state changes, starts its tasks under the node's supervisor and closes it last:

- ``dataplane-public``: produce and fetch (``SpuSettings.public_address``);
- ``dataplane-private``: replica fetch from follower SPUs (``private_address``), each
  connection held to the follower it proved (``replica_session.py``) and carrying that
  follower's one fetch session (``leader_session.py``);
- ``dataplane-replicas``: keeps the hosted replicas in line with the replica specs;
- ``dataplane-upkeep``: every 0.5 s, lets leaders drop followers past their lag time
  (even while nothing is produced) and hands high watermarks to the logs' checkpoints;
  it visits only the leaders with an ISR member behind or produces waiting, and the
  replicas whose HW moved, so idle replicas cost it nothing;
- ``dataplane-retention``: every ``retention_interval`` (10 s), deletes in each replica
  whose topic sets a retention time or size the closed segments it lets go (on the
  I/O threads).

None of it waits on the SC: with no SC reachable the replicas keep their roles,
producing, fetching and replication go on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from ha_sc.protocol.admission import RefusalLog
from ha_sc.protocol.fetch_proof import fetch_key
from ha_sc.secret_file import read_secret
from ha_sc.spu.control_state import ControlState
from ha_sc.spu.dataplane.admission import PortLimits, RequestCaps
from ha_sc.spu.dataplane.connection import MAX_SEND_BUFFER
from ha_sc.spu.dataplane.dispatch import Dispatcher
from ha_sc.spu.dataplane.leader_session import LeaderSession
from ha_sc.spu.dataplane.listener import DataPort
from ha_sc.spu.dataplane.offsets import HostedOffsets
from ha_sc.spu.dataplane.registry import ReplicaRegistry
from ha_sc.spu.dataplane.replica_session import ReplicaSession
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from ha_sc.spu.settings import SpuSettings
from ha_sc.spu.storage import StorageError
from ha_sc.spu.tls import spu_tls
from ha_sc.tasks import Supervisor

log = logging.getLogger("ha_sc.spu.dataplane")

UPKEEP_INTERVAL = 0.5


class DataPlane:
    def __init__(self, settings: SpuSettings, state: ControlState) -> None:
        self._settings = settings
        data = settings.dataplane
        self._io = ThreadPoolExecutor(
            max_workers=data.io_threads, thread_name_prefix=f"spu-{settings.spu_id}-log-io"
        )
        tls = spu_tls(settings.tls)
        self.registry = ReplicaRegistry(
            state,
            settings.logs_dir,
            data,
            self._io,
            connect_timeout=settings.connect_timeout,
            fetch_key=(
                None if settings.token_file is None else fetch_key(read_secret(settings.token_file))
            ),
            tls=None if tls is None else tls.dialer,
        )
        self.offsets = HostedOffsets(self.registry, settings.logs_dir)
        caps = RequestCaps(max_fetch_bytes=data.max_fetch_bytes, max_wait_ms=data.max_wait_ms)
        dispatcher = Dispatcher(self.registry, caps=caps)
        self.traffic = dispatcher.traffic
        refusals = RefusalLog()
        self.public = DataPort(
            "public",
            settings.public_address,
            lambda _host: dispatcher.public,
            in_order=True,
            limits=_port_limits(data, data.max_in_flight),
            tls=None if tls is None else tls.public,
        )
        self.private = DataPort(
            "private",
            settings.private_address,
            lambda host: ReplicaSession(
                settings.spu_id,
                state.fetch_keys,
                dispatcher.private,
                host,
                refusals,
                open_session=lambda follower: LeaderSession(self.registry, follower, caps),
            ),
            in_order=False,
            limits=_port_limits(data, data.private_max_in_flight),
            tls=None if tls is None else tls.private,
            check_followers=settings.tls is not None and settings.tls.client_auth,
        )
        self._changed = asyncio.Event()
        self._changed.set()

    def notify(self) -> None:
        """The control state changed (the replica specs, the SC connection)."""
        self._changed.set()

    def start(self, supervisor: Supervisor) -> None:
        supervisor.start("dataplane-public", self.public.serve())
        supervisor.start("dataplane-private", self.private.serve())
        supervisor.start("dataplane-replicas", self._follow_specs())
        supervisor.start("dataplane-upkeep", self._upkeep())
        supervisor.start("dataplane-retention", self._retention())

    async def close(self) -> None:
        """After the tasks stopped: close every replica's log and the I/O threads."""
        try:
            await self.registry.close()
        finally:
            self._io.shutdown(wait=True)

    async def _follow_specs(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            await self.registry.reconcile()

    async def _retention(self) -> None:
        interval = self._settings.dataplane.retention_interval
        while True:
            await asyncio.sleep(interval)
            await self.registry.enforce_retention(time.time())

    async def _upkeep(self) -> None:
        registry = self.registry
        while True:
            await asyncio.sleep(UPKEEP_INTERVAL)
            for leadership in list(registry.watched):
                leadership.update()
            moved = list(registry.hw_moved)
            registry.hw_moved.clear()
            for replica in moved:
                if replica.has_log and not replica.closed:
                    try:
                        if not await replica.sync_hw():
                            registry.hw_moved.add(replica)  # its checkpoint is due later
                    except (OSError, StorageError) as exc:  # the write path reports these
                        log.debug("replica %s: hw checkpoint: %s", replica.key, exc)


def _port_limits(data: DataPlaneSettings, max_in_flight: int) -> PortLimits:
    return PortLimits(
        max_connections=data.max_connections,
        max_connections_per_peer=data.max_connections_per_peer,
        first_frame_timeout=data.frame_timeout,
        max_in_flight=max_in_flight,
        max_answer=data.max_fetch_bytes,
        max_send_buffer=MAX_SEND_BUFFER,
    )
