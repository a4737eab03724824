"""What every fault is, and the injector that records and always heals them.

A fault is injected, then healed. The ``Injector`` writes both to the history (the
fault windows of the report) and keeps every fault still injected, so the runner
heals them all at the end of a scenario whatever happened (``heal_all`` in a
``finally``). Heal is idempotent: healing what is already healed changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Protocol

from chaos.history.recorder import Recorder

log = logging.getLogger("chaos.faults")


class Unavailable(Exception):
    """This fault cannot run on this machine (a tool or a privilege is missing)."""


class Fault(Protocol):
    @property
    def name(self) -> str:
        """What it does: ``sigkill``, ``blackhole``..."""

    @property
    def target(self) -> str:
        """What it hits: a member, a link, a set of links."""

    async def inject(self) -> None: ...

    async def heal(self) -> None: ...


class Injector:
    """Injects faults, records their windows, and heals whatever is left."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._active: list[Fault] = []
        self.injected = 0

    @property
    def active(self) -> list[Fault]:
        return list(self._active)

    async def inject(self, fault: Fault) -> None:
        log.info("inject %s on %s", fault.name, fault.target)
        self._recorder.fault(fault.name, fault.target, "inject")
        self._active.append(fault)
        self.injected += 1
        await fault.inject()

    async def heal(self, fault: Fault) -> None:
        if fault not in self._active:
            return
        self._active.remove(fault)
        try:
            await fault.heal()
        finally:
            log.info("healed %s on %s", fault.name, fault.target)
            self._recorder.fault(fault.name, fault.target, "heal")

    @contextlib.asynccontextmanager
    async def applied(self, fault: Fault) -> AsyncIterator[Fault]:
        """Injected for the ``async with`` body, healed after it whatever happens."""
        try:
            await self.inject(fault)
            yield fault
        finally:
            await self.heal(fault)

    async def heal_all(self) -> None:
        """Heal every fault still injected, the latest first; a heal that fails is
        logged and the others are still healed."""
        for fault in reversed(self._active):
            try:
                await self.heal(fault)
            except Exception:
                log.exception("healing %s on %s failed", fault.name, fault.target)
