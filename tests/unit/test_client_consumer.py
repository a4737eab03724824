"""The consumer against fake SPUs on loopback: start offsets, stop at the end,
committed records only, long polling, following a leader change, every partition."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ha_sc.client.consumer import TopicConsumer
from ha_sc.client.consumer_record import ConsumerRecord
from ha_sc.client.data_errors import ConsumeFailed
from ha_sc.client.offsets import Offset
from ha_sc.client.record_codec import encode_pairs, encode_values
from ha_sc.client.stream_settings import ConsumerSettings
from ha_sc.protocol.data import Isolation
from ha_sc.protocol.record_batch import make_batch
from tests.fake_spu import FakeLog, StandIns, stand_ins

FAST = ConsumerSettings(wait=0.2, retry_backoff=0.005, retry_backoff_max=0.02)


def fill(
    log: FakeLog, values: list[bytes], *, per_batch: int = 10, key: bytes | None = None
) -> None:
    for start in range(0, len(values), per_batch):
        chunk = values[start : start + per_batch]
        payload = encode_values(chunk) if key is None else encode_pairs([key] * len(chunk), chunk)
        log.append(make_batch(payload, record_count=len(chunk), first_timestamp_ms=1000 + start))


def values(records: list[ConsumerRecord]) -> list[bytes]:
    return [r.value for r in records]


async def collect(
    stream: AsyncIterator[ConsumerRecord], limit: int = 10_000
) -> list[ConsumerRecord]:
    out = []
    async for record in stream:
        out.append(record)
        assert len(out) <= limit
    return out


@pytest.fixture
async def world() -> AsyncIterator[StandIns]:
    async with stand_ins() as made:
        yield made


async def test_from_the_beginning_to_the_end_in_order(world: StandIns) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    written = [f"v{i}".encode() for i in range(95)]
    fill(one.log("t", 0), written, key=b"k")
    consumer = TopicConsumer("t", metadata, FAST.model_copy(update={"max_bytes": 200}))
    async with consumer.stream(Offset.beginning(), stop_at_end=True) as stream:
        records = await collect(stream)
    assert values(records) == written
    assert [r.offset for r in records] == list(range(95))
    assert records[0] == ConsumerRecord(0, 0, b"k", b"v0", 1000)
    assert records[-1].timestamp_ms == 1090


async def test_start_offsets_and_an_empty_partition(world: StandIns) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    sc.set_partition("empty", 0, 5001)
    fill(one.log("t", 0), [f"{i}".encode() for i in range(30)])
    consumer = TopicConsumer("t", metadata, FAST)

    async def read(start: Offset) -> list[int]:
        async with consumer.stream(start, stop_at_end=True) as stream:
            return [r.offset for r in await collect(stream)]

    assert await read(Offset.absolute(13)) == list(range(13, 30))  # mid-batch
    assert await read(Offset.end(5)) == list(range(25, 30))
    assert await read(Offset.beginning(28)) == [28, 29]
    assert await read(Offset.end()) == []
    async with TopicConsumer("empty", metadata, FAST).stream(
        Offset.beginning(), stop_at_end=True
    ) as stream:
        assert await collect(stream) == []
    with pytest.raises(ConsumeFailed, match="out of range"):
        await read(Offset.absolute(31))


async def test_only_committed_records_by_default(world: StandIns) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    log = one.log("t", 0)
    fill(log, [b"a"] * 20)
    log.hold_hw = True
    fill(log, [b"b"] * 20)  # written on the leader, not yet on its followers
    committed = TopicConsumer("t", metadata, FAST)
    async with committed.stream(Offset.beginning(), stop_at_end=True) as stream:
        assert values(await collect(stream)) == [b"a"] * 20
    uncommitted = TopicConsumer(
        "t", metadata, FAST.model_copy(update={"isolation": Isolation.UNCOMMITTED})
    )
    async with uncommitted.stream(Offset.beginning(), stop_at_end=True) as stream:
        assert values(await collect(stream)) == [b"a"] * 20 + [b"b"] * 20


async def test_a_waiting_consumer_gets_new_records_as_they_come(world: StandIns) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    fill(one.log("t", 0), [b"old"])
    async with TopicConsumer("t", metadata, FAST).stream(Offset.end()) as stream:
        reader = asyncio.create_task(anext(stream), name="read-one")
        await asyncio.sleep(0.3)  # past one long poll
        assert not reader.done()
        fill(one.log("t", 0), [b"new"])
        record = await asyncio.wait_for(reader, 5)
    assert (record.offset, record.value) == (1, b"new")


async def test_the_consumer_follows_a_new_leader_without_repeating_or_skipping(
    world: StandIns,
) -> None:
    one, two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    written = [f"{i}".encode() for i in range(60)]
    fill(one.log("t", 0), written[:40])
    fill(two.log("t", 0), written[:40])  # the follower has the same records
    settings = FAST.model_copy(update={"max_bytes": 300})
    got: list[ConsumerRecord] = []
    async with TopicConsumer("t", metadata, settings).stream(Offset.beginning()) as stream:
        async for record in stream:
            got.append(record)
            if len(got) == 15:  # the leader moves; the old one names the new one
                one.not_leader[("t", 0)] = (5002, None)
                fill(two.log("t", 0), written[40:])
            if len(got) == 60:
                break
    assert values(got) == written
    assert [r.offset for r in got] == list(range(60))


async def test_the_consumer_reconnects_when_the_leader_spu_dies(world: StandIns) -> None:
    one, two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    fill(one.log("t", 0), [b"a"] * 10)
    fill(two.log("t", 0), [b"a"] * 10 + [b"b"] * 10)
    got = []
    async with TopicConsumer("t", metadata, FAST).stream(Offset.beginning()) as stream:
        async for record in stream:
            got.append(record.value)
            if len(got) == 10:
                await one.stop()
                sc.set_partition("t", 0, 5002)  # the SC elected spu 5002
            if len(got) == 20:
                break
    assert got == [b"a"] * 10 + [b"b"] * 10


async def test_every_partition_in_one_stream(world: StandIns) -> None:
    one, two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    sc.set_partition("t", 1, 5002)
    sc.set_partition("t", 2, 5001)
    fill(one.log("t", 0), [b"p0"] * 25)
    fill(two.log("t", 1), [b"p1"] * 7)
    consumer = TopicConsumer("t", metadata, FAST)
    async with consumer.stream(Offset.beginning(), stop_at_end=True) as stream:
        records = await collect(stream)
        assert stream.positions == {0: 25, 1: 7, 2: 0}
    by_partition = {p: [r.offset for r in records if r.partition == p] for p in (0, 1, 2)}
    assert by_partition == {0: list(range(25)), 1: list(range(7)), 2: []}
    async with consumer.stream(Offset.beginning(), partition=1, stop_at_end=True) as stream:
        assert values(await collect(stream)) == [b"p1"] * 7


async def test_no_leader_for_too_long_fails_the_stream(world: StandIns) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    await one.stop()
    consumer = TopicConsumer("t", metadata, FAST.model_copy(update={"unavailable_timeout": 0.2}))
    with pytest.raises(ConsumeFailed, match="no leader answered"):
        async with consumer.stream(Offset.beginning()) as stream:
            await collect(stream)
