"""A real SPU data plane (in this process, real logs, loopback) lowers what a fetch asks
for to its ``max_fetch_bytes``: a client asking for a GiB gets at most the cap (whole
batches, the first one whatever its size)."""

from __future__ import annotations

from pathlib import Path

from ha_sc.protocol.data import Acks, Isolation
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from tests.data_client import RawDataClient, records_batch
from tests.dataplane_harness import Cluster
from tests.sc_processes import eventually

BATCH_VALUE = b"v" * 20_000
CAP = 50_000


async def test_a_fetch_asking_a_gib_is_answered_at_most_the_cap(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, [1], DataPlaneSettings(max_fetch_bytes=CAP))
    await cluster.start()
    try:
        cluster.assign("t-0", 1, [1])
        await eventually(lambda: cluster.spus[1].registry_has("t-0", "leader"), what="leading")
        async with RawDataClient(cluster.spus[1].public) as client:
            for _ in range(10):
                response = await client.produce(
                    "t", 0, records_batch([BATCH_VALUE]), acks=Acks.LEADER
                )
                assert response.error is None, response.error
            fetched, body = await client.fetch(
                "t", 0, 0, isolation=Isolation.UNCOMMITTED, max_bytes=1 << 30
            )
            assert fetched.error is None, fetched.error
            assert 0 < len(body) <= CAP
            assert fetched.leo == 10
    finally:
        await cluster.stop()
