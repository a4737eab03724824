"""The links of a chaos cluster that pass through a fault-injecting proxy, by name.

Link names say both ends: ``kv:sc-1`` (SC replica to its KV endpoint, etcd backend),
``raft:sc-1|sc-2`` (the one TCP connection pysyncobj keeps between two Raft nodes),
``sc:5001>sc-2`` (SPU 5001 to SC replica sc-2's private port), ``client>5001`` (clients
to SPU 5001's public port), ``replica>5001`` (other SPUs to SPU 5001's private port).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from chaos.cluster.ports import Ports
from chaos.proxy import FaultProxy


def kv_link(replica: str) -> str:
    return f"kv:{replica}"


def raft_link(a: str, b: str) -> str:
    first, second = sorted((a, b))
    return f"raft:{first}|{second}"


def sc_link(spu: int, replica: str) -> str:
    return f"sc:{spu}>{replica}"


def client_link(spu: int) -> str:
    return f"client>{spu}"


def replication_link(spu: int) -> str:
    return f"replica>{spu}"


class Links:
    """Every proxied link of one cluster; closes them all at the end."""

    def __init__(self, ports: Ports | None = None) -> None:
        self._proxies: dict[str, FaultProxy] = {}
        self._ports = ports
        """Where each proxy's listening port comes from (default: any the kernel gives)."""

    async def add(self, name: str, target: str) -> FaultProxy:
        """A proxy named ``name`` in front of ``target`` (host:port), started."""
        if name in self._proxies:
            raise ValueError(f"link {name} exists")
        port = 0
        if self._ports is not None:
            address = self._ports.address()
            self._ports.release([address])
            port = int(address.rsplit(":", 1)[1])
        proxy = await FaultProxy(target, listen_port=port, name=name).start()
        self._proxies[name] = proxy
        return proxy

    def __getitem__(self, name: str) -> FaultProxy:
        return self._proxies[name]

    def __contains__(self, name: str) -> bool:
        return name in self._proxies

    @property
    def names(self) -> list[str]:
        return sorted(self._proxies)

    def matching(self, prefix: str) -> list[FaultProxy]:
        return [p for n, p in sorted(self._proxies.items()) if n.startswith(prefix)]

    def raft_of(self, replica: str) -> list[FaultProxy]:
        """Every Raft link with ``replica`` at one end."""
        return [
            p
            for n, p in sorted(self._proxies.items())
            if n.startswith("raft:") and replica in n.removeprefix("raft:").split("|")
        ]

    def raft_between(self, side: Iterable[str], other: Iterable[str]) -> list[FaultProxy]:
        """The Raft links from any replica of ``side`` to any of ``other``."""
        names = {raft_link(a, b) for a in side for b in other if a != b}
        return [self._proxies[n] for n in sorted(names) if n in self._proxies]

    def sc_links_to(self, replica: str) -> list[FaultProxy]:
        """Every SPU's link to ``replica``'s private port."""
        return [
            p
            for n, p in sorted(self._proxies.items())
            if n.startswith("sc:") and n.endswith(f">{replica}")
        ]

    def sc_links_of(self, spu: int) -> list[FaultProxy]:
        """``spu``'s links to every SC replica."""
        return self.matching(f"sc:{spu}>")

    def heal_all(self) -> None:
        for proxy in self._proxies.values():
            proxy.heal()

    async def close(self) -> None:
        proxies, self._proxies = list(self._proxies.values()), {}
        await asyncio.gather(*(p.close() for p in proxies), return_exceptions=True)
