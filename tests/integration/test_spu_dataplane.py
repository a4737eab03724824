"""The SPU data plane over real sockets and real logs: data planes of several SPUs in
this process, fed replica specs as the SC would send them (tests/dataplane_harness.py),
so each test chooses its leader changes; no SC runs."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ha_sc.protocol.data import (
    Acks,
    ErrorCode,
    FetchResponse,
    Isolation,
    ProduceRequest,
    ProduceResponse,
    ReplicaFetchRequest,
)
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from ha_sc.spu.replica_status import StatusReporter
from ha_sc.spu.storage.checkpoint import read_hw
from tests.data_client import RawDataClient, records_batch, values_in
from tests.dataplane_harness import Cluster
from tests.sc_processes import eventually

KEY = "t-0"
LAG = 1.0


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    settings = DataPlaneSettings(replica_wait_ms=500, lag_time=LAG)
    planes = Cluster(tmp_path, [1, 2, 3], settings)
    await planes.start()
    try:
        yield planes
    finally:
        await planes.stop()


async def led_by(cluster: Cluster, leader: int, followers: list[int]) -> None:
    cluster.assign(KEY, leader, [leader, *followers])
    await eventually(
        lambda: (
            cluster.spus[leader].registry_has(KEY, "leader")
            and all(cluster.spus[f].registry_has(KEY, "follower") for f in followers)
        ),
        what=f"spu {leader} leads {KEY}, {followers} follow",
    )


async def everything(address: str, isolation: Isolation = Isolation.COMMITTED) -> list[bytes]:
    async with RawDataClient(address) as client:
        return [value for _, value in await client.read_all("t", 0, isolation=isolation)]


async def holds(address: str, expected: list[bytes], isolation: Isolation) -> bool:
    return await everything(address, isolation) == expected


def values(*names: str) -> list[bytes]:
    return [name.encode() for name in names]


async def test_acks_all_answers_once_the_follower_has_it_and_both_serve_it(
    cluster: Cluster,
) -> None:
    await led_by(cluster, 1, [2])
    async with RawDataClient(cluster.spus[1].public) as client:
        first = await client.produce("t", 0, records_batch(values("a", "b")))
        second = await client.produce("t", 0, records_batch(values("c")), records_batch([b"d"]))
    assert (first.error, first.base_offset, second.base_offset) == (None, 0, 2)
    written = values("a", "b", "c", "d")
    assert await everything(cluster.spus[1].public) == written
    # acks=all: the follower holds it all; its HW follows on its next fetch
    assert await everything(cluster.spus[2].public, Isolation.UNCOMMITTED) == written
    await eventually(lambda: everything(cluster.spus[2].public), what="follower hw")
    assert await everything(cluster.spus[2].public) == written


async def test_a_follower_names_the_leader_and_a_stranger_knows_nothing(cluster: Cluster) -> None:
    await led_by(cluster, 1, [2])
    async with RawDataClient(cluster.spus[2].public) as client:
        refused = await client.produce("t", 0, records_batch([b"x"]))
        unknown = await client.produce("nope", 0, records_batch([b"x"]))
    assert refused.error is not None and refused.error.code is ErrorCode.NOT_LEADER
    assert refused.error.leader == 1
    assert refused.error.leader_address == cluster.spus[1].public
    assert unknown.error is not None and unknown.error.code is ErrorCode.UNKNOWN_PARTITION


async def test_malformed_requests_are_answered_and_the_connection_goes_on(
    cluster: Cluster,
) -> None:
    await led_by(cluster, 1, [])
    good = records_batch([b"ok"])
    damaged = bytearray(good)
    damaged[-1] ^= 0xFF
    async with RawDataClient(cluster.spus[1].public) as client:
        head = b'{"type": "produce", "id": 9, "topic": "t", "partition": -1}'
        client.send_raw(struct.pack(">II", 4 + len(head), len(head)) + head)
        bad_header, _ = await client.receive()
        bad_crc = await client.produce("t", 0, bytes(damaged))
        wrong_port, _ = await client.request(
            ReplicaFetchRequest(id=11, topic="t", partition=0, follower=2, offset=0)
        )
        written = await client.produce("t", 0, good)
    assert isinstance(bad_header, ProduceResponse) and bad_header.id == 9
    assert bad_header.error is not None and bad_header.error.code is ErrorCode.MALFORMED
    assert bad_crc.error is not None and bad_crc.error.code is ErrorCode.MALFORMED
    assert "crc" in bad_crc.error.message
    assert wrong_port.error is not None and wrong_port.error.code is ErrorCode.MALFORMED
    assert (written.error, written.base_offset) == (None, 0)  # the bad batch wrote nothing
    async with RawDataClient(cluster.spus[1].public) as broken:
        broken.send_raw(struct.pack(">II", 1 << 30, 10))
        with pytest.raises(ConnectionError):
            await broken.receive()
    assert await everything(cluster.spus[1].public) == [b"ok"]


async def test_pipelined_produces_are_answered_in_order(cluster: Cluster) -> None:
    await led_by(cluster, 1, [2])
    async with RawDataClient(cluster.spus[1].public) as client:
        for n in range(50):
            acks = Acks.ALL if n % 2 else Acks.LEADER
            header = ProduceRequest(id=n + 1, topic="t", partition=0, acks=acks)
            client.send(header, records_batch([f"r{n}".encode()]))
        answers = [(await client.receive())[0] for _ in range(50)]
    assert [a.id for a in answers] == list(range(1, 51))
    assert [a.base_offset for a in answers] == list(range(50))


async def test_a_retry_is_a_duplicate_on_the_leader_and_on_a_promoted_follower(
    cluster: Cluster,
) -> None:
    await led_by(cluster, 1, [2])
    batches = [records_batch([b"p", b"q"], producer_id=7, base_sequence=2 * n) for n in range(3)]
    async with RawDataClient(cluster.spus[1].public) as client:
        for batch in batches:
            assert (await client.produce("t", 0, batch)).error is None
        retry = await client.produce("t", 0, batches[1])
        gap = await client.produce("t", 0, records_batch([b"z"], producer_id=7, base_sequence=10))
    assert (retry.duplicate, retry.base_offset) == (True, 2)
    assert gap.error is not None and gap.error.code is ErrorCode.OUT_OF_SEQUENCE
    assert "sent base sequence 10, expected 6" in gap.error.message
    await led_by(cluster, 2, [1])
    async with RawDataClient(cluster.spus[2].public) as client:
        again = await client.produce("t", 0, batches[2])
        following = await client.produce(
            "t", 0, records_batch([b"r"], producer_id=7, base_sequence=6)
        )
    assert (again.duplicate, again.base_offset) == (True, 4)
    assert (following.duplicate, following.base_offset) == (False, 6)
    assert await everything(cluster.spus[2].public) == values("p", "q") * 3 + [b"r"]


async def test_a_fetch_waits_for_records_to_come(cluster: Cluster) -> None:
    await led_by(cluster, 1, [2])
    async with (
        RawDataClient(cluster.spus[1].public) as consumer,
        RawDataClient(cluster.spus[1].public) as producer,
    ):
        waiting = asyncio.create_task(consumer.fetch("t", 0, 0, wait_ms=20_000))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await producer.produce("t", 0, records_batch([b"late"]))
        response, body = await asyncio.wait_for(waiting, 10)
    assert isinstance(response, FetchResponse) and response.hw == 1
    assert values_in(body) == [(0, b"late")]


async def test_a_demoted_leader_cuts_what_was_never_committed(cluster: Cluster) -> None:
    await led_by(cluster, 1, [2])
    async with RawDataClient(cluster.spus[1].public) as client:
        assert (await client.produce("t", 0, records_batch([b"kept"]))).error is None
    await cluster.stop(2)
    cluster.disconnect_from_sc(1)  # so it keeps spu 2 in its ISR: nothing more commits
    async with RawDataClient(cluster.spus[1].public) as client:
        lost = await client.produce("t", 0, records_batch([b"lost"]), acks=Acks.LEADER)
        stuck = await client.produce("t", 0, records_batch([b"stuck"]), timeout_ms=300)
    assert lost.error is None and lost.base_offset == 1
    assert stuck.error is not None and stuck.error.code is ErrorCode.TIMEOUT
    assert await everything(cluster.spus[1].public, Isolation.UNCOMMITTED) == values(
        "kept", "lost", "stuck"
    )
    await cluster.start(2)
    await led_by(cluster, 2, [1])
    async with RawDataClient(cluster.spus[2].public) as client:
        assert (await client.produce("t", 0, records_batch([b"new"]))).base_offset == 1
    expected = values("kept", "new")
    await eventually(
        lambda: holds(cluster.spus[1].public, expected, Isolation.UNCOMMITTED),
        what="the old leader holds the new leader's log",
    )


async def test_a_follower_that_stops_fetching_leaves_the_isr_after_the_lag_time(
    cluster: Cluster,
) -> None:
    await led_by(cluster, 1, [2])
    async with RawDataClient(cluster.spus[1].public) as client:
        assert (await client.produce("t", 0, records_batch([b"both"]))).error is None
        await cluster.stop(2)
        alone = await client.produce("t", 0, records_batch([b"alone"]), timeout_ms=10_000)
    assert alone.error is None and alone.base_offset == 1
    hosted = cluster.spus[1].plane.registry.get(KEY) if cluster.spus[1].plane else None
    assert hosted is not None and hosted.leadership is not None
    assert hosted.leadership.lsr == 0


async def test_the_status_report_carries_what_produce_and_replication_moved(
    cluster: Cluster,
) -> None:
    cluster.assign("other-0", 1, [1, 2])
    await led_by(cluster, 1, [2])
    leader, follower = cluster.spus[1], cluster.spus[2]
    assert leader.plane is not None and leader.state is not None
    assert follower.plane is not None and follower.state is not None
    leader_reports, follower_reports = StatusReporter(), StatusReporter()
    leader_reports.next_report(leader.state.replicas, leader.plane.offsets)  # full
    follower_reports.next_report(follower.state.replicas, follower.plane.offsets)
    async with RawDataClient(leader.public) as client:
        assert (await client.produce("t", 0, records_batch(values("a", "b")))).error is None
    await eventually(lambda: everything(follower.public), what="the follower's hw")

    said = leader_reports.next_report(leader.state.replicas, leader.plane.offsets)
    assert [(r.partition, r.leo, r.hw, r.lsr) for r in said.replicas] == [(KEY, 2, 2, 1)]
    said = follower_reports.next_report(follower.state.replicas, follower.plane.offsets)
    assert [(r.partition, r.leo, r.hw) for r in said.replicas] == [(KEY, 2, 2)]

    await cluster.stop(2)
    async with RawDataClient(leader.public) as client:
        alone = await client.produce("t", 0, records_batch([b"c"]), timeout_ms=10_000)
    assert alone.error is None  # committed once spu 2 left the in-sync set
    said = leader_reports.next_report(leader.state.replicas, leader.plane.offsets)
    assert [(r.partition, r.leo, r.hw, r.lsr) for r in said.replicas] == [(KEY, 3, 3, 0)]


async def test_a_restarted_spu_keeps_its_records_and_recognises_retries(cluster: Cluster) -> None:
    await led_by(cluster, 1, [])
    batch = records_batch([b"once"], producer_id=9, base_sequence=0)
    async with RawDataClient(cluster.spus[1].public) as client:
        assert (await client.produce("t", 0, batch)).base_offset == 0
        await client.produce("t", 0, records_batch([b"plain"]))
    await cluster.stop(1)
    await cluster.start(1)
    await eventually(lambda: cluster.spus[1].registry_has(KEY, "leader"), what="leads again")
    async with RawDataClient(cluster.spus[1].public) as client:
        retry = await client.produce("t", 0, batch)
    assert (retry.duplicate, retry.base_offset) == (True, 0)
    assert await everything(cluster.spus[1].public) == values("once", "plain")


async def test_the_hw_checkpoints_catch_up_once_producing_stops(cluster: Cluster) -> None:
    await led_by(cluster, 1, [2])
    async with RawDataClient(cluster.spus[1].public) as client:
        for n in range(5):
            await client.produce("t", 0, records_batch([f"r{n}".encode()]))
    directories = [spu.settings.logs_dir / KEY for spu in (cluster.spus[1], cluster.spus[2])]
    await eventually(
        lambda: all(read_hw(directory) == 5 for directory in directories),
        what="both checkpoints hold the HW",
    )
