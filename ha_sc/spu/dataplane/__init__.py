"""The SPU's data plane: hosted partition replicas, produce and fetch on the public
port, leader-to-follower replication on the private port (docs/dataplane.md).

``plane.DataPlane`` is the whole of it; ``SpuNode`` runs one.
"""

from ha_sc.spu.dataplane_settings import DataPlaneSettings

__all__ = ["DataPlaneSettings"]
