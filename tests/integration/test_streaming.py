"""Producing and consuming on real processes: SC replicas and SPUs started as
``cluster up`` starts them, the producer of the client library, the ``consume`` and
``produce`` commands of the CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ha_sc.client import Offset, ProducerSettings, StreamClient
from ha_sc.protocol.data import Acks
from tests.cli_run import ha_sc
from tests.sc_processes import LocalCluster, computed

pytestmark = [pytest.mark.raft, pytest.mark.slow]

RECORDS = 20_000


async def test_records_come_back_in_order_and_streaming_goes_on_without_the_sc(
    tmp_path: Path,
) -> None:
    with LocalCluster(tmp_path, backend="raft", replicas=1, spus=2) as cluster:
        leader, _ = await cluster.start_all()
        sc = cluster.public(leader)
        async with cluster.admin() as admin:
            await admin.create_topic("orders", computed(2, 2))
        sent = await produce_orders(sc)

        # every record back through the CLI, in offset order per partition
        code, out, err = await ha_sc("consume", "orders", "-B", "-d", "-O", "json", "--sc", sc)
        assert code == 0, err
        got: dict[int, list[tuple[int, str, str]]] = {0: [], 1: []}
        for line in out.decode().splitlines():
            doc = json.loads(line)
            got[doc["partition"]].append((doc["offset"], doc["key"] or "", doc["value"]))
        for partition in (0, 1):
            offsets = [offset for offset, _, _ in got[partition]]
            assert offsets == list(range(len(offsets))), f"partition {partition}"
            assert sorted(got[partition]) == sorted(sent[partition])
        assert sum(len(v) for v in got.values()) == RECORDS

        # the produce command, then the last three records of the partition
        code, out, err = await ha_sc(
            "produce", "orders", "-p", "0", "--sc", sc, stdin=b"one\ntwo\nthree\n"
        )
        assert code == 0, err
        code, out, err = await ha_sc("consume", "orders", "-p", "0", "-T", "3", "-d", "--sc", sc)
        assert (code, out) == (0, b"one\ntwo\nthree\n"), err

        # no SC replica runs: the client goes on with the metadata it has
        async with StreamClient([sc], sc_timeout=1.0) as client:
            # acks=all: committed once acknowledged, so a committed read sees them
            producer = await client.topic_producer("orders", ProducerSettings(acks=Acks.ALL))
            async with producer:
                cluster.replicas[leader].kill()
                during = await producer.send_many([b"during"] * 100)
                assert sum(d.record_count for d in await during) == 100
            stream = client.consumer("orders").stream(Offset.end(100), stop_at_end=True)
            async with stream:
                values = [record.value async for record in stream]
        assert values.count(b"during") == 100
        cluster.assert_no_crash()


async def produce_orders(sc: str) -> dict[int, list[tuple[int, str, str]]]:
    """RECORDS records with acks=all: half one by one with keys, half in one bulk call
    to partition 1; (offset, key, value) of each by partition, as acknowledged."""
    sent: dict[int, list[tuple[int, str, str]]] = {0: [], 1: []}
    async with StreamClient([sc]) as client:
        settings = ProducerSettings(acks=Acks.ALL, batch_records=1000)
        async with await client.topic_producer("orders", settings) as producer:
            acks = [
                (
                    f"k{i % 7}",
                    f"v{i}",
                    await producer.send(f"v{i}".encode(), key=f"k{i % 7}".encode()),
                )
                for i in range(RECORDS // 2)
            ]
            bulk = await producer.send_many(
                [f"m{i}".encode() for i in range(RECORDS // 2)], partition=1
            )
            for key, value, ack in acks:
                sent[ack.partition].append((await ack, key, value))
            numbered = iter(range(RECORDS // 2))
            for delivered in await bulk:
                sent[1] += [
                    (delivered.base_offset + i, "", f"m{next(numbered)}")
                    for i in range(delivered.record_count)
                ]
    return sent


async def test_acks_all_production_goes_on_when_the_partition_leader_spu_is_killed(
    tmp_path: Path,
) -> None:
    with LocalCluster(tmp_path, backend="raft", replicas=1, spus=3) as cluster:
        leader, _ = await cluster.start_all()
        async with cluster.admin() as admin:
            await admin.create_topic("payments", computed(1, 3))
            (partition,) = await admin.list_partitions("payments")
        async with StreamClient([cluster.public(leader)]) as client:
            settings = ProducerSettings(acks=Acks.ALL, linger=0.002)
            values = [f"p{i}".encode() for i in range(3000)]
            async with await client.topic_producer("payments", settings) as producer:
                acks = []
                for index, value in enumerate(values):
                    acks.append(await producer.send(value))
                    if index % 100 == 99:
                        await asyncio.sleep(0.05)  # about 2000 records/s for 1.5 s
                    if index == 1000:
                        cluster.spus[partition.spec.leader].kill()
                offsets = [await ack for ack in acks]  # none raises
            stream = client.consumer("payments").stream(Offset.beginning(), stop_at_end=True)
            async with stream:
                read = [(record.offset, record.value) async for record in stream]
        assert offsets == list(range(len(values)))
        assert read == list(zip(offsets, values, strict=True))
