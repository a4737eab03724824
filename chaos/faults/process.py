"""Process faults on one member (SC replica, SPU, etcd), by its PID only.

``Kill`` (SIGKILL) and ``Terminate`` (SIGTERM, waited for) are healed by starting the
member again on its data; ``Pause`` (SIGSTOP) by SIGCONT; ``Restart`` is a graceful
stop and start in one go (its heal only makes sure the member runs).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from chaos.cluster.member import Member


@dataclass(eq=False)
class Kill:
    member: Member
    restart: bool = True
    """Start it again on heal."""
    name: str = "sigkill"

    @property
    def target(self) -> str:
        return self.member.name

    async def inject(self) -> None:
        await self.member.kill()

    async def heal(self) -> None:
        if self.restart and not self.member.alive:
            self.member.start()


@dataclass(eq=False)
class Terminate:
    member: Member
    restart: bool = True
    name: str = "sigterm"

    @property
    def target(self) -> str:
        return self.member.name

    async def inject(self) -> None:
        await self.member.terminate()

    async def heal(self) -> None:
        if self.restart and not self.member.alive:
            self.member.start()


@dataclass(eq=False)
class Pause:
    member: Member
    name: str = "sigstop"

    @property
    def target(self) -> str:
        return self.member.name

    async def inject(self) -> None:
        self.member.signal(signal.SIGSTOP)

    async def heal(self) -> None:
        if self.member.alive and self.member.stopped:
            self.member.signal(signal.SIGCONT)


@dataclass(eq=False)
class Restart:
    member: Member
    name: str = "restart"

    @property
    def target(self) -> str:
        return self.member.name

    async def inject(self) -> None:
        await self.member.terminate()
        self.member.start()

    async def heal(self) -> None:
        if not self.member.alive:
            self.member.start()
