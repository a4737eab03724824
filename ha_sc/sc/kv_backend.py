"""Opening the KV a replica stores cluster objects in."""

from __future__ import annotations

from ha_sc.kv.api import KvStore
from ha_sc.kv.memory import MemoryKv
from ha_sc.kv.raft import RaftKv
from ha_sc.sc.settings import Backend, ScSettings


async def open_kv(settings: ScSettings) -> KvStore:
    """The KV named by ``settings``, ready to read and write."""
    if settings.backend is Backend.MEMORY:
        return MemoryKv()
    if settings.backend is Backend.RAFT:
        node = RaftKv(settings.raft_address, settings.raft_peers, settings.data_dir / "raft")
        await node.wait_ready()
        return node
    from ha_sc.kv.etcd import EtcdKv  # imports etcd3 only when it is used

    return EtcdKv(list(settings.etcd_endpoints), root=settings.etcd_root)
