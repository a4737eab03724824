"""A topic create traced in one process: the request, the fenced write, the cache, the
controller's reconcile and writes, the push to an SPU and the SPU's apply of it (the
context carried in the control message's ``trace``), as one chain of parents."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from opentelemetry.trace import StatusCode

from election.guard import Guard
from election.term import Term
from ha_sc.controllers.loop import ControllerLoop
from ha_sc.controllers.writer import ActionWriter
from ha_sc.kv.api import StaleGuard
from ha_sc.kv.memory import MemoryKv
from ha_sc.model import (
    Endpoint,
    Kind,
    PartitionResolution,
    SpuSpec,
    TopicReplicas,
    TopicSpec,
    encode_value,
)
from ha_sc.protocol import Delta, encode_message, sc_message_decoder
from ha_sc.store import GlobalStore, start_dispatchers
from ha_sc.tasks import Supervisor
from ha_sc.telemetry.tracing_context import ORIGINS, carrier, tracer
from ha_sc.telemetry.tracing_spans import fenced_write, spu_apply, spu_push
from tests.tracing_capture import ancestor_spans, ancestors, by_name, captured_spans
from tests.waiting import eventually

SPUS = (5001, 5002)


class Store:
    def __init__(self) -> None:
        self.kv = MemoryKv()
        self.cache = GlobalStore()
        self.supervisor = Supervisor()

    def term(self, replica: str = "replica-a") -> Term:
        holder = self.kv.leases.acquire("sc", replica)
        assert holder is not None
        return Term(Guard("sc", holder.epoch), valid_until=time.monotonic() + 3600)

    async def add_spus(self) -> None:
        for spu_id in SPUS:
            spec = SpuSpec(
                id=spu_id,
                public_endpoint=Endpoint(host="127.0.0.1", port=spu_id),
                private_endpoint=Endpoint(host="127.0.0.1", port=spu_id + 1000),
            )
            await self.kv.create(Kind.SPU.value, f"spu-{spu_id}", encode_value(spec))

    async def create_topic(self, term: Term) -> None:
        """As the API's handler does it, under a request span."""
        spec = TopicSpec(replicas=TopicReplicas.new_computed(1, 2))
        with (
            tracer("test").start_as_current_span("POST /api/v1/topics"),
            fenced_write("create", Kind.TOPIC.value, "orders", term.epoch),
        ):
            await self.kv.create(Kind.TOPIC.value, "orders", encode_value(spec), guard=term.guard)

    async def until_online(self) -> None:
        await eventually(
            lambda: (
                (p := self.cache.partitions.get("orders-0")) is not None
                and p.status.resolution is PartitionResolution.ONLINE
            ),
            what="orders-0 online",
        )


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    s = Store()
    start_dispatchers(s.cache, s.kv, s.supervisor)
    yield s
    await s.supervisor.stop()


async def reconciled(store: Store, term: Term) -> None:
    """Run the leader's loop until orders-0 is Online."""
    loop = ControllerLoop(
        store.cache, ActionWriter(store.kv, store.cache), connected=lambda: set(SPUS), resync=0.05
    )
    task = asyncio.create_task(loop.run(term), name="controllers")
    try:
        await store.until_online()
    finally:
        term.end("test over")
        await asyncio.wait_for(task, 5)


def pushed_and_applied(epoch: int) -> None:
    """The SC's push of orders-0 to an SPU, through the wire, and the SPU's apply."""
    with spu_push(5001, epoch, "delta", ["orders-0"]) as push:
        sent = Delta(epoch=epoch, trace=carrier(push))
    (received,) = sc_message_decoder().feed(encode_message(sent))
    assert isinstance(received, Delta)
    with spu_apply(5001, received.type, received.epoch, received.trace):
        pass


async def test_the_spus_apply_descends_from_the_push_the_reconcile_and_the_request(
    store: Store,
) -> None:
    await store.add_spus()
    with captured_spans() as exported:
        term = store.term()
        await store.create_topic(term)
        await reconciled(store, term)
        pushed_and_applied(term.epoch)
        spans = exported.get_finished_spans()
    (apply,) = by_name(spans, "spu 5001 apply delta")
    chain = ancestors(spans, apply)
    assert in_order(
        chain,
        [
            "push delta to spu 5001",
            "cache put partitions/orders-0",
            "kv create partitions/orders-0",
            "reconcile topics/orders",
            "cache put topics/orders",
            "kv create topics/orders",
            "POST /api/v1/topics",
        ],
    ), chain
    assert chain[0] == "push delta to spu 5001" and chain[-1] == "POST /api/v1/topics"
    assert len({s.context.trace_id for s in [apply, *spans] if s.name in chain}) == 1
    reconcile = next(s for s in ancestor_spans(spans, apply) if s.name == "reconcile topics/orders")
    attributes = dict(reconcile.attributes or {})
    assert attributes["controller"] == "topics" and attributes["key"] == "orders"
    assert "CreateObject partitions/orders-0" in list(attributes["action"])  # type: ignore[arg-type]
    passes = {s.context.span_id for s in by_name(spans, "controller pass")}
    plans = by_name(spans, "controller plan")
    assert plans and all(p.parent is not None and p.parent.span_id in passes for p in plans)
    (create,) = by_name(spans, "kv create partitions/orders-0")
    assert dict(create.attributes or {})["epoch"] == term.epoch


def in_order(chain: list[str], wanted: list[str]) -> bool:
    """``wanted`` is a subsequence of ``chain``."""
    rest = iter(chain)
    return all(name in rest for name in wanted)


async def test_a_write_refused_for_a_newer_epoch_is_an_error_span_with_the_reason(
    store: Store,
) -> None:
    old = store.term("replica-a")
    store.kv.leases.release("sc", old.epoch)
    store.term("replica-b")
    with captured_spans() as exported:
        with pytest.raises(StaleGuard):
            await store.create_topic(old)
        assert ORIGINS.last(Kind.TOPIC.value, "orders") is None  # a refused write causes nothing
        spans = exported.get_finished_spans()
    (write,) = by_name(spans, "kv create topics/orders")
    assert write.status.status_code is StatusCode.ERROR
    assert write.status.description is not None
    assert write.status.description.startswith("StaleGuard")


async def test_with_tracing_off_nothing_is_kept_and_messages_carry_no_context(
    store: Store,
) -> None:
    await store.add_spus()
    term = store.term()
    await store.create_topic(term)
    await reconciled(store, term)
    assert len(ORIGINS) == 0
    with spu_push(5001, term.epoch, "delta", ["orders-0"]) as push:
        assert carrier(push) == {}
