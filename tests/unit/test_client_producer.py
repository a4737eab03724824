"""The producer against fake SPUs on loopback: batching, order, retries, re-routing on
"not leader", deduplication of a retried batch, the delivery timeout, a fresh producer
id after the leader lost records (out of sequence), an SC that is down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from ha_sc.client.data_errors import DeliveryTimeout, ProduceFailed, UnknownTopic
from ha_sc.client.producer import TopicProducer
from ha_sc.client.stream_settings import ProducerSettings
from ha_sc.protocol.data import ErrorCode, ProduceRequest
from ha_sc.protocol.record_batch import iter_batches
from ha_sc.spu.storage.records import decode_records
from tests.fake_spu import FakeSpu, StandIns, stand_ins

FAST = ProducerSettings(linger=0.001, retry_backoff=0.005, retry_backoff_max=0.02)


def stored(spu: FakeSpu, topic: str, partition: int) -> list[tuple[int, bytes | None, bytes]]:
    """(offset, key, value) of every record the fake holds, in log order."""
    out = []
    for batch in spu.log(topic, partition).batches:
        for raw in iter_batches(batch):
            for i, record in enumerate(decode_records(raw.payload)):
                out.append((raw.header.base_offset + i, record.key, record.value))
    return out


def headers(spu: FakeSpu, topic: str, partition: int) -> list[tuple[int, int, int]]:
    """(producer id, base sequence, record count) of each stored batch."""
    return [
        (raw.header.producer_id, raw.header.base_sequence, raw.header.record_count)
        for batch in spu.log(topic, partition).batches
        for raw in iter_batches(batch)
    ]


@pytest.fixture
async def world() -> AsyncIterator[StandIns]:
    async with stand_ins() as made:
        yield made


async def test_records_are_batched_and_acknowledged_with_their_offsets_in_order(
    world: StandIns,
) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("orders", 0, 5001)
    settings = FAST.model_copy(update={"batch_records": 100})
    async with await TopicProducer.create("orders", metadata, settings) as producer:
        acks = [await producer.send(f"r{i}".encode()) for i in range(450)]
        bulk = await producer.send_many([f"m{i}".encode() for i in range(250)])
        await producer.flush()
        assert [await ack for ack in acks] == list(range(450))
        delivered = await bulk
    assert sum(d.record_count for d in delivered) == 250
    assert delivered[0].base_offset == 450 and all(d.partition == 0 for d in delivered)
    values = [value for _, _, value in stored(one, "orders", 0)]
    assert values == [f"r{i}".encode() for i in range(450)] + [f"m{i}".encode() for i in range(250)]
    batches = headers(one, "orders", 0)
    assert len(batches) >= 7 and all(count <= 100 for _, _, count in batches)
    # one producer id; each batch's sequence follows the records before it
    assert len({pid for pid, _, _ in batches}) == 1 and batches[0][0] != 0
    expected = 0
    for _, base_sequence, count in batches:
        assert base_sequence == expected
        expected += count


async def test_queued_batches_travel_together_and_each_gets_its_offset(world: StandIns) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("orders", 0, 5001)
    one.drop_after_write = 1  # the first request is written, its answer lost: sent again
    settings = FAST.model_copy(update={"batch_records": 100, "request_bytes": 2200})
    async with await TopicProducer.create("orders", metadata, settings) as producer:
        bulk = await producer.send_many([b"%03d" % i for i in range(1000)])
        await producer.flush()
        delivered = await bulk
    assert [d.base_offset for d in delivered] == list(range(0, 1000, 100))
    assert [value for _, _, value in stored(one, "orders", 0)] == [b"%03d" % i for i in range(1000)]
    assert [count for _, _, count in headers(one, "orders", 0)] == [100] * 10
    produced = [r for r in one.requests if isinstance(r, ProduceRequest)]
    # a batch of 100 records of 3 bytes has 1100 payload bytes, so a request carries 2 of
    # the 9 batches sealed at once (the 9th alone), the 10th goes once due, and the first
    # request went twice: 7 requests for 10 batches
    assert len(produced) == 7


async def test_keys_choose_partitions_and_keyless_records_go_round(world: StandIns) -> None:
    one, two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    sc.set_partition("t", 1, 5002)
    async with await TopicProducer.create("t", metadata, FAST) as producer:
        keyed = [await producer.send(b"v", key=b"same") for _ in range(5)]
        rounds = [await producer.send(b"r") for _ in range(4)]
        spread = await (await producer.send_many([b"m"] * 5))
    assert len({ack.partition for ack in keyed}) == 1
    assert [ack.partition for ack in rounds] == [0, 1, 0, 1]
    assert [(d.partition, d.record_count) for d in spread] == [(0, 3), (1, 2)]
    assert len(stored(one, "t", 0)) + len(stored(two, "t", 1)) == 14


async def test_not_leader_reroutes_to_the_named_leader(world: StandIns) -> None:
    one, two, sc, metadata = world
    sc.set_partition("t", 0, 5001)  # stale: spu 5002 leads now
    one.not_leader[("t", 0)] = (5002, two.address)
    async with await TopicProducer.create("t", metadata, FAST) as producer:
        acks = [await producer.send(f"{i}".encode()) for i in range(10)]
        await producer.flush()
        assert [await ack for ack in acks] == list(range(10))
    assert stored(one, "t", 0) == []
    assert [v for _, _, v in stored(two, "t", 0)] == [f"{i}".encode() for i in range(10)]
    route = metadata.route("t", 0)
    assert route is not None and route.leader == 5002


async def test_not_leader_without_a_name_asks_the_sc(world: StandIns) -> None:
    one, two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    one.not_leader[("t", 0)] = (None, None)
    async with await TopicProducer.create("t", metadata, FAST) as producer:
        ack = await producer.send(b"x")
        await asyncio.sleep(0.05)  # a few refused attempts
        sc.set_partition("t", 0, 5002, announce=False)  # only a fresh list tells
        assert await ack == 0
    assert [v for _, _, v in stored(two, "t", 0)] == [b"x"]


async def test_a_batch_retried_after_a_lost_answer_is_not_written_twice(world: StandIns) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    one.errors = [ErrorCode.TIMEOUT]  # acks=all: written, not committed in time
    async with await TopicProducer.create("t", metadata, FAST) as producer:
        first = await producer.send(b"first")
        assert await first == 0
        one.drop_after_write = 1  # written, then the connection drops before the answer
        second = await producer.send(b"second")
        assert await second == 1
    assert [v for _, _, v in stored(one, "t", 0)] == [b"first", b"second"]
    produced = [r for r in one.requests if isinstance(r, ProduceRequest)]
    assert len(produced) == 4  # each sent twice: the retry was answered as a duplicate


async def test_a_dead_leader_fails_the_batch_after_the_delivery_timeout_then_a_new_producer_id(
    world: StandIns,
) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    settings = FAST.model_copy(update={"delivery_timeout": 0.3})
    async with await TopicProducer.create("t", metadata, settings) as producer:
        assert await (await producer.send(b"before")) == 0
        ((pid, _, _),) = headers(one, "t", 0)
        one.errors = [ErrorCode.STORAGE] * 1000
        failed = await producer.send(b"lost")
        with pytest.raises(DeliveryTimeout, match=r"not acknowledged within 0\.3 s"):
            await failed
        one.errors = []
        assert await (await producer.send(b"after")) == 1
    (first_pid, _, _), (new_pid, sequence, _) = headers(one, "t", 0)
    assert first_pid == pid and new_pid != pid and sequence == 0


async def test_an_out_of_sequence_refusal_moves_the_partition_to_a_new_producer_id(
    world: StandIns, caplog: pytest.LogCaptureFixture
) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    async with await TopicProducer.create("t", metadata, FAST) as producer:
        first_id = producer.producer_id
        assert await (await producer.send(b"a")) == 0
        assert await (await producer.send(b"b")) == 1
        one.log("t", 0).lose_last()  # acks=leader: the new leader never got "b"
        with caplog.at_level(logging.WARNING, logger="ha_sc.client"):
            assert await (await producer.send(b"c")) == 1  # refused once, then sent again
        assert await (await producer.send(b"d")) == 2
    assert [v for _, _, v in stored(one, "t", 0)] == [b"a", b"c", b"d"]
    (old_id, old_seq, _), (new_id, seq_c, _), (next_id, seq_d, _) = headers(one, "t", 0)
    assert (old_id, old_seq) == (first_id, 0)
    assert new_id not in (0, first_id) and (seq_c, next_id, seq_d) == (0, new_id, 1)
    produced = [r for r in one.requests if isinstance(r, ProduceRequest)]
    assert len(produced) == 5  # a, b, c refused, c again, d
    (warning,) = [
        r for r in caplog.records if r.levelno == logging.WARNING and "lost records" in r.msg
    ]
    assert warning.getMessage() == (
        f"partition t-0: leader lost records before sequence 2 of producer {first_id}; "
        f"continuing as producer {new_id}"
    )


async def test_an_out_of_sequence_answer_is_not_an_error_for_the_caller(world: StandIns) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    one.errors = [ErrorCode.OUT_OF_SEQUENCE]  # the fake answers out_of_sequence once
    async with await TopicProducer.create("t", metadata, FAST) as producer:
        bulk = await producer.send_many([b"x", b"y"])
        (delivered,) = await bulk
    assert (delivered.base_offset, delivered.record_count) == (0, 2)
    assert [v for _, _, v in stored(one, "t", 0)] == [b"x", b"y"]
    ((pid, sequence, count),) = headers(one, "t", 0)
    assert pid not in (0, producer.producer_id) and (sequence, count) == (0, 2)


async def test_a_malformed_refusal_is_not_retried(world: StandIns) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    one.errors = [ErrorCode.MALFORMED]
    async with await TopicProducer.create("t", metadata, FAST) as producer:
        with pytest.raises(ProduceFailed, match="malformed") as refused:
            await (await producer.send(b"x"))
    assert refused.value.code is ErrorCode.MALFORMED and refused.value.partition == 0


async def test_producing_goes_on_while_no_sc_answers(world: StandIns) -> None:
    one, two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    async with await TopicProducer.create("t", metadata, FAST) as producer:
        assert await (await producer.send(b"a")) == 0
        sc.available = False
        one.drop_after_write = 1  # a connection error asks for a refresh: it fails
        assert await (await producer.send(b"b")) == 1
        one.not_leader[("t", 0)] = (5002, two.address)  # the SPU names the new leader
        assert await (await producer.send(b"c")) == 0
    assert metadata.last_error is not None and "unreachable" in metadata.last_error
    assert [v for _, _, v in stored(two, "t", 0)] == [b"c"]


async def test_an_unknown_topic_is_named(world: StandIns) -> None:
    metadata = world.metadata
    with pytest.raises(UnknownTopic, match="'nope'"):
        await TopicProducer.create("nope", metadata, FAST)


PIPELINED = FAST.model_copy(update={"batch_records": 10, "request_bytes": 250, "max_in_flight": 4})
"""Batches of 10 records of 3 bytes (110 payload bytes): 2 batches a request."""


def values(count: int) -> list[bytes]:
    return [b"%03d" % i for i in range(count)]


async def test_requests_are_pipelined_up_to_max_in_flight_and_acknowledged_in_order(
    world: StandIns,
) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    one.answer_delay = 0.02
    async with await TopicProducer.create("t", metadata, PIPELINED) as producer:
        bulk = await producer.send_many(values(200))
        delivered = await bulk
    assert one.most_unanswered == 4  # never more than max_in_flight on the wire
    assert [d.base_offset for d in delivered] == list(range(0, 200, 10))
    assert [v for _, _, v in stored(one, "t", 0)] == values(200)


async def test_one_request_at_a_time_when_max_in_flight_is_1(world: StandIns) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    one.answer_delay = 0.01
    serial = PIPELINED.model_copy(update={"max_in_flight": 1})
    async with await TopicProducer.create("t", metadata, serial) as producer:
        await (await producer.send_many(values(60)))
    assert one.most_unanswered == 1
    assert [v for _, _, v in stored(one, "t", 0)] == values(60)


async def test_a_failed_request_in_the_pipeline_sends_it_and_the_later_ones_again_once(
    world: StandIns,
) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    one.answer_delay = 0.02
    one.errors = [ErrorCode.TIMEOUT]  # the first request: written, not committed in time
    async with await TopicProducer.create("t", metadata, PIPELINED) as producer:
        delivered = await (await producer.send_many(values(200)))
    assert [d.base_offset for d in delivered] == list(range(0, 200, 10))
    assert [v for _, _, v in stored(one, "t", 0)] == values(200)  # each written once
    produced = [r for r in one.requests if isinstance(r, ProduceRequest)]
    # 10 requests, then the failed one and those on the wire behind it again (one at a
    # time, so one request would have gone again)
    assert len(produced) >= 12


async def test_a_connection_lost_mid_pipeline_loses_and_doubles_nothing(world: StandIns) -> None:
    one, _two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    one.answer_delay = 0.01
    async with await TopicProducer.create("t", metadata, PIPELINED) as producer:
        first = await producer.send_many(values(100))
        await asyncio.sleep(0)
        one.drop_after_write = 1  # a request written, then the connection drops
        second = await producer.send_many(values(100))
        offsets = [d.base_offset for d in await first + await second]
    assert offsets == list(range(0, 200, 10))
    assert [v for _, _, v in stored(one, "t", 0)] == values(100) * 2


async def test_not_leader_mid_pipeline_moves_every_request_to_the_named_leader_in_order(
    world: StandIns,
) -> None:
    one, two, sc, metadata = world
    sc.set_partition("t", 0, 5001)
    one.answer_delay = 0.01
    async with await TopicProducer.create("t", metadata, PIPELINED) as producer:
        first = await producer.send_many(values(100))
        await asyncio.sleep(0.005)
        one.not_leader[("t", 0)] = (5002, two.address)  # leadership moved mid-stream
        second = await producer.send_many(values(100))
        await first
        await second
    moved = [v for _, _, v in stored(two, "t", 0)]
    assert [v for _, _, v in stored(one, "t", 0)] + moved == values(100) * 2
    assert moved  # the rest went to the new leader, in order after what the old one had
