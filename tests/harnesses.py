"""KvHarness implementations for the memory and Raft backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

from election.guard import Guard
from ha_sc.kv.api import KvStore
from ha_sc.kv.memory import MemoryKv
from ha_sc.kv.raft import RaftKv
from tests.net import free_addresses

SMALL_HISTORY = 100


async def fill_history(kv: KvStore, count: int = SMALL_HISTORY + 50) -> None:
    """Push older changes out of a small watch history."""
    for index in range(count):
        await kv.create("fillers", f"f{index}", b"{}")


class MemoryHarness:
    name = "memory"

    def __init__(self) -> None:
        self.memory = MemoryKv(history_size=SMALL_HISTORY)
        self.kv: KvStore = self.memory

    async def current_guard(self, election: str) -> Guard:
        holder = self.memory.leases.acquire(election, "candidate-a")
        assert holder is not None
        return Guard(election, holder.epoch)

    async def supersede(self, guard: Guard) -> Guard:
        holder = self.memory.leases.transfer(guard.election, guard.epoch, "candidate-b", "")
        assert holder is not None
        return Guard(guard.election, holder.epoch)

    async def open_another(self) -> KvStore:
        return self.memory

    async def force_compaction(self) -> None:
        await fill_history(self.kv)

    async def close(self) -> None:
        await self.kv.close()


class RaftHarness:
    """Three real pysyncobj nodes on loopback, in this process."""

    name = "raft"

    def __init__(self, data_dir: Path, *, secret: str | None = None) -> None:
        addresses = free_addresses(3)
        self.nodes = [
            RaftKv(
                address,
                [a for a in addresses if a != address],
                data_dir / f"node{index}",
                history_size=SMALL_HISTORY,
                secret=secret,
            )
            for index, address in enumerate(addresses)
        ]
        self.kv: KvStore = self.nodes[0]
        self._next_view = 1

    async def start(self) -> None:
        await asyncio.gather(*(node.wait_ready() for node in self.nodes))

    async def current_guard(self, election: str) -> Guard:
        node = self.nodes[0]
        holder = await node.submit(node.leases.acquire, election, "candidate-a", "", "")
        assert holder is not None
        return Guard(election, holder.epoch)

    async def supersede(self, guard: Guard) -> Guard:
        node = self.nodes[0]
        holder = await node.submit(
            node.leases.transfer, guard.election, guard.epoch, "candidate-b", "", ""
        )
        assert holder is not None
        return Guard(guard.election, holder.epoch)

    async def open_another(self) -> KvStore:
        view = self.nodes[self._next_view % len(self.nodes)]
        self._next_view += 1
        return view

    async def force_compaction(self) -> None:
        await fill_history(self.kv)

    async def close(self) -> None:
        await asyncio.gather(*(node.close() for node in self.nodes))
