"""Streaming through SC failures, on real processes and each backend: 3 SC replicas, 3
SPUs, a topic of 3 partitions x 2 replicas, the client library's producer with acks=all.

- 100k records produced while the SC leader is SIGKILLed and then, once a new leader
  is up (and the killed replica restarted, so that Raft keeps a quorum), that one is
  SIGTERMed: every record comes back exactly once, in order, at the
  offset its acknowledgement gave, and no error reaches the producer's caller.
- every SC replica stopped for 10 s: "stopped" is taken as SIGSTOP (then SIGCONT), the
  processes frozen with their sockets open, so the clients' and SPUs' requests to the
  SC hang rather than being refused; the same test also runs with every replica
  SIGKILLed and restarted after the 10 s (connections refused instead). Producing and
  consuming on the existing partitions go on during those 10 s: records produced then
  are acknowledged and read back, by a stream opened before the stop and by one opened
  during it (the stop lasts until those reads are done, 10 s at least).

(The partition-leader SPU SIGKILL under acks=all production is in test_streaming.py and
test_spu_dataplane_processes.py.)
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ha_sc.client import Delivered, Offset, ProducerSettings, StreamClient
from ha_sc.client.consumer import RecordStream
from ha_sc.client.consumer_record import ConsumerRecord
from ha_sc.protocol.data import Acks
from tests.sc_processes import LocalCluster, computed, eventually

pytestmark = pytest.mark.slow

BACKENDS = [
    pytest.param("raft", marks=pytest.mark.raft),
    pytest.param("etcd", marks=pytest.mark.etcd),
]
TOPIC = "events"
PARTITIONS = 3
RECORDS = 100_000
CHUNK = 1_000
"""Records per ``send_many`` call."""
KILL_AT = 20
"""The chunk before which the SC leader is SIGKILLed."""
FAULTS_DONE_BY = 90
"""The chunk before which both faults must be over (the third leader elected): the
producer waits there if they are not, so the last chunks go to a settled cluster and
every fault happens while records are being produced."""
STOPPED_FOR = 10.0


def value(index: int) -> bytes:
    return b"%06d" % index


@contextmanager
def cluster_for(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[LocalCluster]:
    etcd = request.getfixturevalue("etcd_server").endpoint if backend == "etcd" else None
    with LocalCluster(
        tmp_path,
        backend=backend,
        replicas=3,
        spus=3,
        etcd_endpoint=etcd,
        etcd_root=f"/{tmp_path.name}/",
    ) as cluster:
        yield cluster


async def ready_topic(cluster: LocalCluster) -> tuple[str, int]:
    """Start everything, create the topic, wait until its partitions are Online."""
    leader, epoch = await cluster.start_all()
    async with cluster.admin() as admin:
        await admin.create_topic(TOPIC, computed(PARTITIONS, 2), wait=20)
    await eventually(
        lambda: cluster.partitions_online(TOPIC, PARTITIONS, via=leader), what="partitions Online"
    )
    return leader, epoch


async def sigkill_then_sigterm(cluster: LocalCluster, first: str, epoch: int) -> list[str]:
    """SIGKILL ``first``; once another replica leads, restart ``first`` (a standby again,
    as ``cluster up`` would bring it back: on Raft two of three must run for a quorum)
    and SIGTERM the new leader; wait for a third leader. The leaders in order."""
    cluster.replicas[first].kill()
    second, epoch2 = await cluster.wait_for_leader(
        [n for n in cluster.replicas if n != first], above=epoch
    )
    cluster.replicas[first].start()
    await cluster.wait_for_leader(above=epoch2 - 1)  # all three agree on ``second``
    member = cluster.replicas[second]
    member.signal(signal.SIGTERM)
    await eventually(lambda: not member.alive, what=f"{second} exits on SIGTERM")
    third, _ = await cluster.wait_for_leader(
        [n for n in cluster.replicas if n != second], above=epoch2
    )
    return [first, second, third]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_100k_acks_all_records_survive_an_sc_leader_sigkill_and_sigterm(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with cluster_for(backend, tmp_path, request) as cluster:
        first, epoch = await ready_topic(cluster)
        endpoints = [cluster.public(n) for n in cluster.replicas]
        async with StreamClient(endpoints, sc_timeout=1.0) as client:
            settings = ProducerSettings(acks=Acks.ALL)
            faults: asyncio.Task[list[str]] | None = None
            delivered: list[Delivered] = []
            async with await client.topic_producer(TOPIC, settings) as producer:
                acks = []
                for chunk in range(RECORDS // CHUNK):
                    if chunk == KILL_AT:
                        faults = asyncio.create_task(sigkill_then_sigterm(cluster, first, epoch))
                    if chunk == FAULTS_DONE_BY:
                        assert faults is not None
                        await faults
                    base = chunk * CHUNK
                    acks.append(await producer.send_many([value(base + i) for i in range(CHUNK)]))
                    await asyncio.sleep(0.02)  # keep production going through the faults
                for ack in acks:
                    delivered += await ack  # raises if any record failed
            assert faults is not None and faults.done()
            leaders = faults.result()
            assert leaders[1] != leaders[0] and leaders[2] != leaders[1]

            # where each record was acknowledged, by partition: offset -> value
            acked: dict[int, dict[int, bytes]] = {p: {} for p in range(PARTITIONS)}
            index = 0
            for part in delivered:
                for i in range(part.record_count):
                    acked[part.partition][part.base_offset + i] = value(index)
                    index += 1
            assert index == RECORDS

            stream = client.consumer(TOPIC).stream(Offset.beginning(), stop_at_end=True)
            async with stream:
                read = [record async for record in stream]

        assert len(read) == RECORDS
        assert len({r.value for r in read}) == RECORDS  # no duplicate
        for partition in range(PARTITIONS):
            mine = [r for r in read if r.partition == partition]
            offsets = [r.offset for r in mine]
            assert offsets == list(range(len(mine))), f"partition {partition}"
            values = [r.value for r in mine]
            assert values == sorted(values), f"partition {partition} out of send order"
            assert dict(zip(offsets, values, strict=True)) == acked[partition]
        cluster.assert_no_crash()


@pytest.mark.parametrize("how", ["sigstop", "sigkill"])
@pytest.mark.parametrize("backend", BACKENDS)
async def test_streaming_goes_on_while_every_sc_replica_is_stopped(
    backend: str, how: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with cluster_for(backend, tmp_path, request) as cluster:
        await ready_topic(cluster)
        endpoints = [cluster.public(n) for n in cluster.replicas]
        async with StreamClient(endpoints, sc_timeout=1.0) as client:
            settings = ProducerSettings(acks=Acks.ALL)
            async with await client.topic_producer(TOPIC, settings) as producer:
                before = await producer.send_many([b"before-%d" % i for i in range(300)])
                assert sum(d.record_count for d in await before) == 300

                # a stream open across the stop, reading new records as they come
                live: list[ConsumerRecord] = []
                following = client.consumer(TOPIC).stream(Offset.end())
                reader = asyncio.create_task(collect(following, live))

                for member in cluster.replicas.values():
                    if how == "sigstop":
                        member.signal(signal.SIGSTOP)
                    else:
                        member.kill()
                stopped_at = time.monotonic()
                try:
                    sent: list[bytes] = []
                    rounds = 0
                    while time.monotonic() - stopped_at < STOPPED_FOR - 1.0:
                        values = [b"during-%d-%d" % (rounds, i) for i in range(100)]
                        ack = await producer.send_many(values)
                        assert sum(d.record_count for d in await ack) == len(values)
                        sent += values
                        rounds += 1
                        await asyncio.sleep(0.1)
                    # still stopped: the live stream got all of them, a new stream reads them
                    wanted = set(sent)
                    await eventually(
                        lambda: wanted <= {r.value for r in live},
                        timeout=20.0,
                        what="the live stream reads what was produced during the stop",
                    )
                    fresh = client.consumer(TOPIC).stream(Offset.beginning(), stop_at_end=True)
                    async with fresh:
                        everything = [record.value async for record in fresh]
                    assert all(
                        _stopped(m.pid) if how == "sigstop" else not m.alive
                        for m in cluster.replicas.values()
                    )
                finally:
                    remaining = STOPPED_FOR - (time.monotonic() - stopped_at)
                    if remaining > 0:
                        await asyncio.sleep(remaining)
                    for member in cluster.replicas.values():
                        if how == "sigstop":
                            member.signal(signal.SIGCONT)
                        else:
                            member.start()
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
                await following.aclose()

                assert rounds >= 5
                assert sorted(everything) == sorted([b"before-%d" % i for i in range(300)] + sent)
                for partition in range(PARTITIONS):
                    offsets = [r.offset for r in live if r.partition == partition]
                    assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))

                # resumed or restarted: the SC set leads again and production goes on
                await cluster.wait_for_leader()
                after = await producer.send_many([b"after-%d" % i for i in range(300)])
                assert sum(d.record_count for d in await after) == 300
        cluster.assert_no_crash()


async def collect(stream: RecordStream, into: list[ConsumerRecord]) -> None:
    async for record in stream:
        into.append(record)


def _stopped(pid: int) -> bool:
    """The process is in the stopped state (``T``), as /proc tells."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "T"
