"""An SPU's status follows whether the SC hears from it.

``connected`` is the SPU connection manager's verdict: a registered connection
that has sent status within the health timeout. The caller decides when silence
counts; after a new SC leader takes over it should allow the SPUs one health
timeout to reconnect before reporting them disconnected, or every partition
would fail over at each SC election.
"""

from ha_sc.controllers.actions import Action, UpdateStatus
from ha_sc.model.kinds import Kind, Spu
from ha_sc.model.spu import SpuResolution


def spu_resolution(current: SpuResolution, *, connected: bool) -> SpuResolution:
    """Online while connected; Offline once lost; Init until first connected."""
    if connected:
        return SpuResolution.ONLINE
    if current is SpuResolution.INIT:
        return SpuResolution.INIT
    return SpuResolution.OFFLINE


def reduce_spu_status(spu: Spu, *, connected: bool) -> list[Action]:
    """The status write the SPU needs, if its resolution changes."""
    resolution = spu_resolution(spu.status.resolution, connected=connected)
    if resolution == spu.status.resolution:
        return []
    status = spu.status.model_copy(update={"resolution": resolution})
    return [UpdateStatus(Kind.SPU, spu.key, spu.meta.revision, status)]
