"""A new leader's catch-up writes one fenced mark per kind and waits for its cache to apply them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from election.guard import Guard
from election.term import Term
from ha_sc.kv.api import StaleGuard
from ha_sc.kv.memory import MemoryKv
from ha_sc.model import Kind
from ha_sc.sc.catch_up import catch_up
from ha_sc.store import GlobalStore, start_dispatchers
from ha_sc.store.progress import PROGRESS_KEY
from ha_sc.tasks import Supervisor

pytestmark = pytest.mark.timeout(15)


@pytest.fixture
async def supervisor() -> AsyncIterator[Supervisor]:
    supervisor = Supervisor()
    yield supervisor
    await supervisor.stop()
    assert supervisor.failure is None


def term_of(kv: MemoryKv, replica: str) -> Term:
    """A term for ``replica``, taking the lease over from whoever holds it."""
    holder = kv.leases.holder("sc")
    if holder is None:
        granted = kv.leases.acquire("sc", replica)
    else:
        granted = kv.leases.transfer("sc", holder.epoch, replica, "")
    assert granted is not None
    return Term(Guard("sc", granted.epoch), valid_until=time.monotonic() + 30)


async def test_catch_up_returns_once_every_kind_applied_this_terms_mark(
    supervisor: Supervisor,
) -> None:
    kv = MemoryKv()
    cache = GlobalStore()
    dispatchers = start_dispatchers(cache, kv, supervisor)
    async with asyncio.timeout(3):
        for dispatcher in dispatchers.values():
            await dispatcher.ready.wait()
    term = term_of(kv, "sc-0")

    highest = await catch_up(kv, cache, term, "sc-0")

    for kind in Kind:
        entry = await kv.get(kind.value, PROGRESS_KEY)
        assert entry is not None
        assert cache.view(kind).revision >= entry.revision
        assert PROGRESS_KEY not in cache.view(kind)
    assert highest == kv.revision

    # a second term rewrites the marks
    again = await catch_up(kv, cache, term_of(kv, "sc-1"), "sc-1")
    assert again > highest


async def test_a_stale_term_cannot_write_its_mark() -> None:
    kv = MemoryKv()
    cache = GlobalStore()
    old = term_of(kv, "sc-0")
    term_of(kv, "sc-1")  # a newer epoch
    with pytest.raises(StaleGuard):
        await catch_up(kv, cache, old, "sc-0")
