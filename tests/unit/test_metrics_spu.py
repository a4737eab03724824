"""An SPU's metrics exposition from a sample: names, types, values."""

from __future__ import annotations

from ha_sc.telemetry.metrics import exposition
from ha_sc.telemetry.metrics_spu import DataTraffic, PartitionSample, SpuSample, spu_registry
from tests.metrics_text import parse, value


def test_an_spu_sample_becomes_counters_and_per_partition_gauges() -> None:
    traffic = DataTraffic(produce_requests=3, produce_bytes=300, fetch_requests=2, fetch_bytes=90)
    sample = SpuSample(
        spu_id=5001,
        highest_epoch=4,
        sc_connected=True,
        pushes_applied=7,
        pushes_refused=1,
        traffic=traffic,
        partitions=(
            PartitionSample("t-0", leads=True, leo=10, hw=8, isr_size=2, follower_lag={5002: 2}),
            PartitionSample("t-1", leads=False, leo=5, hw=5),
        ),
    )
    samples, types = parse(exposition(spu_registry(lambda: sample)).decode())

    assert value(samples, "ha_sc_spu_info", spu_id="5001") == 1
    assert value(samples, "ha_sc_spu_highest_epoch") == 4
    assert value(samples, "ha_sc_spu_sc_connected") == 1
    assert value(samples, "ha_sc_spu_pushes_total") == 7
    assert value(samples, "ha_sc_spu_stale_pushes_refused_total") == 1
    assert value(samples, "ha_sc_spu_produce_requests_total") == 3
    assert value(samples, "ha_sc_spu_produce_bytes_total") == 300
    assert value(samples, "ha_sc_spu_fetch_requests_total") == 2
    assert value(samples, "ha_sc_spu_fetch_bytes_total") == 90
    assert value(samples, "ha_sc_spu_partition_leader", partition="t-0") == 1
    assert value(samples, "ha_sc_spu_partition_leader", partition="t-1") == 0
    assert value(samples, "ha_sc_spu_partition_log_end_offset", partition="t-0") == 10
    assert value(samples, "ha_sc_spu_partition_high_watermark", partition="t-0") == 8
    assert value(samples, "ha_sc_spu_partition_isr_size", partition="t-0") == 2
    assert ("ha_sc_spu_partition_isr_size", (("partition", "t-1"),)) not in samples
    lag = value(samples, "ha_sc_spu_replication_lag_records", partition="t-0", follower="5002")
    assert lag == 2
    assert types["ha_sc_spu_produce_bytes"] == "counter"
    assert types["ha_sc_spu_replication_lag_records"] == "gauge"
