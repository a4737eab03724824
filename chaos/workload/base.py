"""What the runner asks of a workload: start writing, stop writing, read everything back.

``Idle`` is the workload of a run without a data plane: control-plane scenarios
are still checked with leadership and the SPUs' fence decisions."""

from __future__ import annotations

from typing import Protocol


class Workload(Protocol):
    async def start(self) -> None:
        """Begin producing (and consuming) at a steady rate; returns once running."""

    async def stop(self) -> None:
        """Stop producing; wait (bounded) for the outcome of what was sent."""

    async def drain(self) -> None:
        """The final read: every partition from its start, recorded as reader ``final``."""

    async def close(self) -> None:
        """Release everything (safe after a failure, safe twice)."""


class Idle:
    """No records: for control-plane runs."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def drain(self) -> None:
        return None

    async def close(self) -> None:
        return None
