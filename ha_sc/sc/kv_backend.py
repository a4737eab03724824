"""Opening the KV a replica stores cluster objects in, and waiting until it can serve."""

from __future__ import annotations

import asyncio
import logging

from ha_sc.kv.api import KvStore, KvUnavailable
from ha_sc.kv.memory import MemoryKv
from ha_sc.kv.raft import RaftKv
from ha_sc.sc.settings import Backend, ScSettings
from ha_sc.secret_file import read_secret

log = logging.getLogger("ha_sc.sc")

WARN_EVERY = 10.0
"""Seconds between warnings while the store is not ready."""


def open_kv(settings: ScSettings) -> KvStore:
    """The KV named by ``settings``; it may not be able to serve yet (see ``store_ready``)."""
    if settings.backend is Backend.MEMORY:
        return MemoryKv()
    if settings.backend is Backend.RAFT:
        secret_file = settings.raft_secret_file
        secret = None if secret_file is None else read_secret(secret_file)
        return RaftKv(
            settings.raft_address, settings.raft_peers, settings.data_dir / "raft", secret=secret
        )
    from ha_sc.kv.etcd import EtcdKv  # loads the etcd client only when it is used

    access = settings.etcd_access()
    report = log.info if access.tls else log.warning
    report(
        "sc %s: etcd at %s, %s",
        settings.replica_id,
        " ".join(access.endpoints),
        access.describe(),
    )
    return EtcdKv(
        list(access.endpoints),
        root=settings.etcd_root,
        credentials=access.load(),
        max_txn_ops=settings.etcd_max_txn_ops,
    )


async def store_ready(kv: KvStore, replica: str) -> None:
    """Wait, as long as it takes, until ``kv`` can serve.

    A Raft node needs a leader in its group: a lone replica of a three-replica group
    waits here for a second one (it is not an error to start first). Every
    ``WARN_EVERY`` seconds the wait is logged with what is missing. Other backends
    retry their own connections and are ready at once.
    """
    if not isinstance(kv, RaftKv):
        return
    waited = 0.0
    while True:
        try:
            await kv.wait_ready(timeout=WARN_EVERY)
            if waited:
                log.info("sc %s: raft group has a leader after %.0f s", replica, waited)
            return
        except KvUnavailable:
            waited += WARN_EVERY
            log.warning(
                "sc %s: raft node %s has no leader after %.0f s; waiting for a majority "
                "of %s to be up",
                replica,
                kv.address,
                waited,
                ", ".join(sorted(kv.members())),
            )
            await asyncio.sleep(0)
