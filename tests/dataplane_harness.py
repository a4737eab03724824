"""SPU data planes in the test's own process, fed replica specs the way the SC feeds
them (``ControlState.apply`` of a full sync, then deltas), on real loopback ports and
real logs in a temporary directory: no SC, so a test chooses every leader change."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from ha_sc.model import Endpoint, SpuSpec
from ha_sc.protocol import Delta, FullSync, ReplicaSpec, ReplicaStorage, parse_address
from ha_sc.spu.control_state import ControlState
from ha_sc.spu.dataplane.plane import DataPlane
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from ha_sc.spu.settings import SpuSettings
from ha_sc.tasks import Supervisor
from tests.net import free_addresses

SC_TIMEOUT = 0.1
"""Short, so that a test may set a short ``lag_time`` (it must exceed this)."""


def _endpoint(address: str) -> Endpoint:
    host, port = parse_address(address)
    return Endpoint(host=host, port=port)


class PlaneUnderTest:
    """One SPU's data plane and the control state that drives it."""

    def __init__(self, spu_id: int, base: Path, dataplane: DataPlaneSettings) -> None:
        public, private = free_addresses(2)
        self.settings = SpuSettings(
            spu_id=spu_id,
            sc_addresses=("127.0.0.1:1",),
            public_address=public,
            private_address=private,
            data_dir=base / f"spu-{spu_id}",
            sc_timeout=SC_TIMEOUT,
            dataplane=dataplane,
        )
        self.spu_id = spu_id
        self.state: ControlState | None = None
        self.plane: DataPlane | None = None
        self.supervisor: Supervisor | None = None

    @property
    def spec(self) -> SpuSpec:
        return SpuSpec(
            id=self.spu_id,
            public_endpoint=_endpoint(self.settings.public_address),
            private_endpoint=_endpoint(self.settings.private_address),
        )

    @property
    def public(self) -> str:
        return self.settings.public_address

    async def start(self) -> None:
        assert self.plane is None
        self.state = ControlState(self.spu_id, on_change=self._notify)
        self.state.connected("127.0.0.1:1")  # as if an SC were followed
        self.plane = DataPlane(self.settings, self.state)
        self.supervisor = Supervisor()
        self.plane.start(self.supervisor)
        await asyncio.wait_for(self.plane.public.bound.wait(), 10)
        await asyncio.wait_for(self.plane.private.bound.wait(), 10)

    def _notify(self) -> None:
        if self.plane is not None:
            self.plane.notify()

    async def stop(self) -> None:
        if self.plane is None:
            return
        assert self.supervisor is not None
        await self.supervisor.stop()
        await self.plane.close()
        self.plane = self.state = self.supervisor = None

    def registry_has(self, key: str, role: str) -> bool:
        if self.plane is None:
            return False
        hosted = self.plane.registry.get(key)
        if hosted is None or not hosted.loaded:
            return False
        leading = hosted.leadership is not None
        return leading if role == "leader" else (not leading and hosted.following is not None)


class Cluster:
    """Data planes of several SPUs, and the specs an SC would send them."""

    def __init__(self, base: Path, ids: Iterable[int], dataplane: DataPlaneSettings) -> None:
        self.spus = {spu_id: PlaneUnderTest(spu_id, base, dataplane) for spu_id in ids}
        self.epoch = 0
        self.replicas: dict[str, ReplicaSpec] = {}

    async def start(self, *ids: int) -> None:
        for spu_id in ids or self.spus:
            await self.spus[spu_id].start()
            self._sync(self.spus[spu_id])

    async def stop(self, *ids: int) -> None:
        for spu_id in ids or self.spus:
            await self.spus[spu_id].stop()

    def _sync(self, spu: PlaneUnderTest) -> None:
        assert spu.state is not None
        self.epoch += 1
        spu.state.apply(
            FullSync(
                epoch=self.epoch,
                spus=[s.spec for s in self.spus.values()],
                replicas=list(self.replicas.values()),
            )
        )

    def assign(
        self,
        key: str,
        leader: int,
        replicas: list[int],
        storage: ReplicaStorage | None = None,
    ) -> None:
        """The SC's replica spec for ``key``, sent to every running SPU (a delta)."""
        spec = ReplicaSpec(partition=key, leader=leader, replicas=replicas)
        if storage is not None:
            spec = spec.model_copy(update={"storage": storage})
        self.replicas[key] = spec
        self.epoch += 1
        for spu in self.spus.values():
            if spu.state is not None:
                spu.state.apply(Delta(epoch=self.epoch, replicas_changed=[spec]))

    def disconnect_from_sc(self, spu_id: int) -> None:
        state = self.spus[spu_id].state
        assert state is not None
        state.disconnected()
