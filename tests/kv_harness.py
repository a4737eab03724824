"""What the KV conformance suite needs from each backend besides the KV itself."""

from __future__ import annotations

from typing import Protocol

from election.guard import Guard
from ha_sc.kv.api import KvStore


class KvHarness(Protocol):
    kv: KvStore
    name: str

    async def current_guard(self, election: str) -> Guard:
        """Make some candidate the holder of ``election`` and return its guard."""
        ...

    async def supersede(self, guard: Guard) -> Guard:
        """End ``guard``'s tenure and give the election to another holder."""
        ...

    async def open_another(self) -> KvStore:
        """A second client of the same store (another replica's view); closed by the harness."""
        ...
