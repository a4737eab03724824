"""Network faults on chosen links, through their proxies: blackhole, latency with
jitter, loss, connection reset; in one direction or both. Healing a link clears
every impairment of its proxy."""

from __future__ import annotations

from dataclasses import dataclass, field

from chaos.proxy import Direction, FaultProxy


def _names(proxies: list[FaultProxy]) -> str:
    return ",".join(p.name for p in proxies)


@dataclass(eq=False)
class Blackhole:
    proxies: list[FaultProxy]
    direction: Direction = Direction.BOTH
    label: str = ""
    """Shown as the target instead of the link names (``sc-1 from the KV``)."""
    name: str = "blackhole"

    @property
    def target(self) -> str:
        return self.label or _names(self.proxies)

    async def inject(self) -> None:
        for proxy in self.proxies:
            proxy.blackhole(self.direction)

    async def heal(self) -> None:
        for proxy in self.proxies:
            proxy.heal()


@dataclass(eq=False)
class Latency:
    proxies: list[FaultProxy]
    delay: float
    jitter: float = 0.0
    direction: Direction = Direction.BOTH
    label: str = ""
    name: str = field(default="latency")

    @property
    def target(self) -> str:
        return self.label or _names(self.proxies)

    async def inject(self) -> None:
        for proxy in self.proxies:
            proxy.delay(self.delay, self.jitter, self.direction)

    async def heal(self) -> None:
        for proxy in self.proxies:
            proxy.heal()


@dataclass(eq=False)
class Loss:
    proxies: list[FaultProxy]
    rate: float
    direction: Direction = Direction.BOTH
    label: str = ""
    name: str = "loss"

    @property
    def target(self) -> str:
        return self.label or _names(self.proxies)

    async def inject(self) -> None:
        for proxy in self.proxies:
            proxy.drop(self.rate, self.direction)

    async def heal(self) -> None:
        for proxy in self.proxies:
            proxy.heal()


@dataclass(eq=False)
class Reset:
    """Every open connection on the links cut with a TCP reset (nothing to heal)."""

    proxies: list[FaultProxy]
    label: str = ""
    name: str = "reset"

    @property
    def target(self) -> str:
        return self.label or _names(self.proxies)

    async def inject(self) -> None:
        for proxy in self.proxies:
            proxy.reset()

    async def heal(self) -> None:
        return None
