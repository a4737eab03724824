"""An SPU's /metrics over HTTP, from real data planes in this process (no SC): traffic,
offsets, ISR and lag as produced records replicate, and a stale push refused."""

from __future__ import annotations

from pathlib import Path

from ha_sc.protocol import Delta
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from ha_sc.spu.metrics import spu_metrics
from ha_sc.telemetry.metrics_http import MetricsServer
from tests.data_client import RawDataClient, records_batch
from tests.dataplane_harness import Cluster
from tests.metrics_text import Samples, scrape, value
from tests.waiting import eventually

KEY = "t-0"


async def test_an_spu_shows_traffic_offsets_isr_lag_and_refused_pushes(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, [1, 2], DataPlaneSettings(replica_wait_ms=200))
    await cluster.start()
    leader = cluster.spus[1]
    assert leader.state is not None and leader.plane is not None
    server = MetricsServer(spu_metrics(leader.state, leader.plane), "127.0.0.1:0")
    await server.start()
    try:
        cluster.assign(KEY, 1, [1, 2])
        await eventually(lambda: leader.registry_has(KEY, "leader"))
        batch = records_batch([b"a", b"b", b"c"])
        async with RawDataClient(leader.public) as client:
            produced = await client.produce("t", 0, batch)
            assert produced.error is None
            assert [v for _, v in await client.read_all("t", 0)] == [b"a", b"b", b"c"]

        async def replicated() -> Samples | None:
            samples = await scrape(server.address)
            caught_up = (
                value(samples, "ha_sc_spu_partition_isr_size", partition=KEY) == 2
                and value(samples, "ha_sc_spu_replication_lag_records", partition=KEY, follower="2")
                == 0
            )
            return samples if caught_up else None

        samples = await eventually(replicated, what="the follower caught up")
        assert value(samples, "ha_sc_spu_info", spu_id="1") == 1
        assert value(samples, "ha_sc_spu_produce_requests_total") == 1
        assert value(samples, "ha_sc_spu_produce_bytes_total") == len(batch)
        assert value(samples, "ha_sc_spu_fetch_requests_total") >= 1
        assert value(samples, "ha_sc_spu_fetch_bytes_total") > 0
        assert value(samples, "ha_sc_spu_partition_leader", partition=KEY) == 1
        assert value(samples, "ha_sc_spu_partition_log_end_offset", partition=KEY) == 3
        assert value(samples, "ha_sc_spu_partition_high_watermark", partition=KEY) == 3
        assert value(samples, "ha_sc_spu_stale_pushes_refused_total") == 0
        pushes = value(samples, "ha_sc_spu_pushes_total")
        assert pushes == 2  # the full sync and the assignment

        assert not leader.state.apply(Delta(epoch=1))  # a deposed leader's push
        after = await scrape(server.address)
        assert value(after, "ha_sc_spu_stale_pushes_refused_total") == 1
        assert value(after, "ha_sc_spu_pushes_total") == pushes
        assert value(after, "ha_sc_spu_highest_epoch") == cluster.epoch
    finally:
        await server.stop()
        await cluster.stop()
