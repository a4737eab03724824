"""The data plane in real SPU processes under a real SC (one Raft replica): produce with
acks=all through a SIGKILL of the partition leader's SPU, and a SIGKILLed SPU's restart,
with no acknowledged record lost."""

from __future__ import annotations

import asyncio
import functools
import re
import struct
import time
from pathlib import Path

import pytest

from ha_sc.protocol.data import Acks, ErrorCode, Isolation, ProduceResponse
from tests.data_client import RawDataClient, records_batch
from tests.sc_processes import LocalCluster, computed, eventually

pytestmark = [pytest.mark.raft, pytest.mark.slow]

PRODUCER = 4242
RETRY_FOR = 30.0
"""Seconds a batch is retried (re-routed to the leader the SC names) before the test fails."""


class Producer:
    """Idempotent acks=all produce of one batch at a time to ``topic``-0, re-routed to the
    leader the SC names after any error, as a client library would."""

    def __init__(self, cluster: LocalCluster, topic: str, acks: Acks = Acks.ALL) -> None:
        self.cluster = cluster
        self.topic = topic
        self.acks = acks
        self.acked: list[bytes] = []
        self.sequence = 0
        self.retries = 0
        self.resumed_after: float | None = None
        self._client: RawDataClient | None = None

    async def leader_address(self) -> str:
        async with self.cluster.admin(timeout=2.0) as admin:
            (partition,) = await admin.list_partitions(self.topic)
        leader = partition.spec.leader
        return next(s.public for s in self.cluster.layout.spus if s.id == leader)

    async def send(self, value: bytes) -> ProduceResponse:
        batch = records_batch([value], producer_id=PRODUCER, base_sequence=self.sequence)
        deadline = time.monotonic() + RETRY_FOR
        failed_at: float | None = None
        while True:
            try:
                if self._client is None:
                    client = RawDataClient(await self.leader_address())
                    await client.__aenter__()
                    self._client = client
                response = await self._client.produce(self.topic, 0, batch, acks=self.acks)
                if response.error is None:
                    break
                problem = f"{response.error.code}: {response.error.message}"
            except (OSError, TimeoutError) as exc:
                problem = repr(exc)
            failed_at = failed_at or time.monotonic()
            assert time.monotonic() < deadline, f"no ack within {RETRY_FOR} s: {problem}"
            self.retries += 1
            await self.disconnect()
            await asyncio.sleep(0.05)
        if failed_at is not None:
            self.resumed_after = time.monotonic() - failed_at
        self.sequence += 1
        self.acked.append(value)
        return response

    async def disconnect(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


async def records_on(address: str, topic: str, isolation: Isolation) -> list[bytes]:
    async with RawDataClient(address) as client:
        return [v for _, v in await client.read_all(topic, 0, isolation=isolation)]


async def held_after_restart(address: str, topic: str) -> list[bytes] | None:
    """Partition 0's records on a restarted SPU, uncommitted included; None while it is
    not listening yet or has not yet been given its replica specs by the SC."""
    try:
        async with RawDataClient(address) as client:
            response, _ = await client.fetch(topic, 0, 0, isolation=Isolation.UNCOMMITTED)
        if response.error is not None:
            assert response.error.code is ErrorCode.UNKNOWN_PARTITION, response.error
            return None
        return await records_on(address, topic, Isolation.UNCOMMITTED)
    except OSError:
        return None


async def test_acks_all_survives_a_sigkill_of_the_leader_spu(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, backend="raft", replicas=1, spus=2) as cluster:
        sc, _ = await cluster.start_all()
        async with cluster.admin() as admin:
            await admin.create_topic("events", computed(1, 2), wait=20)
        await eventually(lambda: cluster.partitions_online("events", 1, via=sc), what="Online")
        producer = Producer(cluster, "events")
        try:
            for n in range(40):
                await producer.send(f"before-{n}".encode())
            async with cluster.admin() as admin:
                (partition,) = await admin.list_partitions("events")
            victim = partition.spec.leader
            (survivor,) = [s for s in partition.spec.replicas if s != victim]
            survivor_public = next(s.public for s in cluster.layout.spus if s.id == survivor)
            # the follower has every acknowledged record before the leader dies
            assert await records_on(survivor_public, "events", Isolation.UNCOMMITTED) == (
                producer.acked
            )

            cluster.spus[victim].kill()
            for n in range(40):
                await producer.send(f"after-{n}".encode())
        finally:
            await producer.disconnect()
        assert producer.resumed_after is not None
        print(f"acks=all resumed {producer.resumed_after:.2f} s after the leader spu died")
        async with cluster.admin() as admin:
            (partition,) = await admin.list_partitions("events")
        assert partition.spec.leader == survivor
        # every acknowledged record, once, in order
        assert await records_on(survivor_public, "events", Isolation.COMMITTED) == producer.acked

        # the killed SPU comes back as a follower and ends up with the same log
        cluster.spus[victim].start()
        victim_public = next(s.public for s in cluster.layout.spus if s.id == victim)

        async def caught_up() -> bool:
            held = await held_after_restart(victim_public, "events")
            return held == producer.acked

        await eventually(caught_up, what="the restarted spu holds the leader's log")
        cluster.assert_no_crash()


async def test_a_sigkilled_spu_keeps_every_acknowledged_batch(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, backend="raft", replicas=1, spus=1) as cluster:
        sc, _ = await cluster.start_all()
        async with cluster.admin() as admin:
            await admin.create_topic("solo", computed(1, 1), wait=20)
        await eventually(lambda: cluster.partitions_online("solo", 1, via=sc), what="Online")
        producer = Producer(cluster, "solo", acks=Acks.LEADER)
        address = await producer.leader_address()
        try:
            for n in range(30):
                await producer.send(f"r{n}".encode())
        finally:
            await producer.disconnect()
        # a malformed request is answered on a real port, and the connection goes on
        async with RawDataClient(address) as client:
            head = b'{"type": "fetch", "id": 5, "topic": "solo"}'
            client.send_raw(struct.pack(">II", 4 + len(head), len(head)) + head)
            answer, _ = await client.receive()
            assert answer.id == 5 and answer.error.code is ErrorCode.MALFORMED
            assert (await client.fetch("solo", 0, 0))[0].error is None

        (spu,) = cluster.spus.values()
        spu.kill()
        spu.start()

        async def everything_back() -> bool:
            held = await held_after_restart(address, "solo")
            return held == producer.acked

        await eventually(everything_back, what="the restarted spu serves every acked record")
        # a retry of the last batch is still recognised after the restart
        producer.sequence -= 1
        try:
            retry = await producer.send(producer.acked[-1])
        finally:
            await producer.disconnect()
        assert retry.duplicate and retry.base_offset == 29
        cluster.assert_no_crash()


async def test_streaming_goes_on_while_no_sc_is_reachable(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, backend="raft", replicas=1, spus=2) as cluster:
        sc, _ = await cluster.start_all()
        async with cluster.admin() as admin:
            await admin.create_topic("quiet", computed(1, 2), wait=20)
        await eventually(lambda: cluster.partitions_online("quiet", 1, via=sc), what="Online")
        producer = Producer(cluster, "quiet")
        address = await producer.leader_address()
        async with cluster.admin() as admin:
            (partition,) = await admin.list_partitions("quiet")
        (follower,) = [s for s in partition.spec.replicas if s != partition.spec.leader]
        follower_public = next(s.public for s in cluster.layout.spus if s.id == follower)
        cluster.replicas[sc].kill()
        async with RawDataClient(address) as client:
            for n in range(30):
                batch = records_batch([f"r{n}".encode()], producer_id=PRODUCER, base_sequence=n)
                answer = await client.produce("quiet", 0, batch, acks=Acks.ALL)
                assert answer.error is None and answer.base_offset == n
        expected = [f"r{n}".encode() for n in range(30)]

        async def follower_serves_all() -> bool:
            return await records_on(follower_public, "quiet", Isolation.COMMITTED) == expected

        await eventually(follower_serves_all, what="the follower serves every record")
        assert await records_on(address, "quiet", Isolation.COMMITTED) == expected
        cluster.assert_no_crash()


async def test_a_topics_retention_reaches_the_spus_and_deletes_old_segments(
    tmp_path: Path,
) -> None:
    """A topic of 256-byte segments and 1 s retention: the SPUs' logs roll at that size,
    and once the records are a second old the closed segments go; a fetch below the new
    log start is out of range, on the leader and the follower."""
    extra = ["--retention-interval", "0.3"]
    with LocalCluster(tmp_path, backend="raft", replicas=1, spus=2, spu_extra=extra) as cluster:
        sc, _ = await cluster.start_all()
        spec = computed(1, 2).model_copy(update={"segment_size": 256, "retention_time_seconds": 1})
        async with cluster.admin() as admin:
            await admin.create_topic("aged", spec, wait=20)
        await eventually(lambda: cluster.partitions_online("aged", 1, via=sc), what="Online")
        producer = Producer(cluster, "aged")
        try:
            for n in range(4):  # about 360 bytes a batch: one segment each
                await producer.send(b"%d" % n * 300)
        finally:
            await producer.disconnect()
        addresses = [s.public for s in cluster.layout.spus]

        async def starts_at_3(address: str) -> bool:
            async with RawDataClient(address) as client:
                below, _ = await client.fetch("aged", 0, 2)
                kept, body = await client.fetch("aged", 0, 3)
            out_of_range = (
                below.error is not None and below.error.code is ErrorCode.OFFSET_OUT_OF_RANGE
            )
            return out_of_range and kept.error is None and bool(body)

        for address in addresses:
            await eventually(
                functools.partial(starts_at_3, address), what=f"log start 3 on {address}"
            )
        for member in cluster.spus.values():  # both SPUs say so in domain words
            text = member.log_path.read_text()
            assert re.search(r"aged-0: retention removed \d segments?, log now starts at 3", text)


SESSION_PARTITIONS = 12


async def produce_to_each(
    cluster: LocalCluster, topic: str, value: bytes, acked: dict[int, list[bytes]]
) -> None:
    """One acks=all record to each partition of ``topic`` (idempotent: a producer per
    partition), re-routed to the leader the SC names after any error, until acknowledged."""
    for index in range(SESSION_PARTITIONS):
        sent = acked.setdefault(index, [])
        batch = records_batch([value], producer_id=PRODUCER + 1 + index, base_sequence=len(sent))
        deadline = time.monotonic() + RETRY_FOR
        while True:
            async with cluster.admin(timeout=2.0) as admin:
                partitions = {p.key: p for p in await admin.list_partitions(topic)}
            leader = partitions[f"{topic}-{index}"].spec.leader
            address = next(s.public for s in cluster.layout.spus if s.id == leader)
            try:
                async with RawDataClient(address) as client:
                    response = await client.produce(topic, index, batch)
                if response.error is None:
                    break
                problem = f"{response.error.code}: {response.error.message}"
            except (OSError, TimeoutError) as exc:
                problem = repr(exc)
            assert time.monotonic() < deadline, f"{topic}-{index}: no ack: {problem}"
            await asyncio.sleep(0.05)
        sent.append(value)


async def test_a_fetch_session_of_many_partitions_through_a_sigkill_of_a_leader_spu(
    tmp_path: Path,
) -> None:
    """Each SPU leads half the partitions and follows the other half from the other SPU,
    in one fetch session; the killed one comes back and follows every partition from the
    survivor in one session, ending up with every acknowledged record of each."""
    with LocalCluster(tmp_path, backend="raft", replicas=1, spus=2) as cluster:
        sc, _ = await cluster.start_all()
        async with cluster.admin() as admin:
            await admin.create_topic("many", computed(SESSION_PARTITIONS, 2), wait=20)
        await eventually(
            lambda: cluster.partitions_online("many", SESSION_PARTITIONS, via=sc), what="Online"
        )
        acked: dict[int, list[bytes]] = {}
        for n in range(3):
            await produce_to_each(cluster, "many", f"before-{n}".encode(), acked)
        victim = cluster.layout.spus[0].id
        (survivor,) = [s.id for s in cluster.layout.spus if s.id != victim]
        cluster.spus[victim].kill()
        for n in range(3):
            await produce_to_each(cluster, "many", f"after-{n}".encode(), acked)
        survivor_public = next(s.public for s in cluster.layout.spus if s.id == survivor)
        for index in range(SESSION_PARTITIONS):
            assert await records_on_partition(survivor_public, "many", index) == acked[index]

        cluster.spus[victim].start()
        victim_public = next(s.public for s in cluster.layout.spus if s.id == victim)

        async def caught_up() -> bool:
            for index in range(SESSION_PARTITIONS):
                try:
                    held = await records_on_partition(victim_public, "many", index)
                except (OSError, AssertionError):
                    return False
                if held != acked[index]:
                    return False
            return True

        await eventually(caught_up, what="the restarted spu holds every partition's records")
        cluster.assert_no_crash()


async def records_on_partition(address: str, topic: str, index: int) -> list[bytes]:
    async with RawDataClient(address) as client:
        found = await client.read_all(topic, index, isolation=Isolation.UNCOMMITTED)
    return [value for _, value in found]
