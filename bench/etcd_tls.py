"""What TLS to etcd costs: sequential KV write latency, plain and over TLS.

    .venv/bin/python -m bench.etcd_tls [--writes 400] [--rounds 2]

One etcd member on loopback per run, this process writing through ``EtcdKv``:
``--writes`` creates one at a time, each awaited. Rounds alternate a plain etcd and
one with TLS on its client URL and client certificates required (a test CA), so load
on the machine falls on both alike. The first write of each run (the connection and,
with TLS, its handshake) is left out of the figures and reported apart.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.common import machine, summary
from election.etcd_access import PLAIN
from ha_sc.kv.etcd import EtcdKv
from tests.etcd_server import EtcdServer, EtcdTls


async def write_latencies(tls: bool, writes: int) -> tuple[float, list[float]]:
    """The first write's time (connecting included) and each later write's."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        server = EtcdServer(base / "etcd", tls=EtcdTls.made_in(base / "pki") if tls else None)
        await asyncio.to_thread(server.start)
        credentials = PLAIN
        if server.tls is not None:
            credentials = server.tls.access([server.url]).load()
        kv = EtcdKv([server.endpoint], root="/bench/", credentials=credentials)
        try:
            latencies = []
            for n in range(writes + 1):
                start = time.perf_counter()
                await kv.create("topics", f"t{n}", b"{}")
                latencies.append(time.perf_counter() - start)
            return latencies[0], latencies[1:]
        finally:
            await kv.close()
            await asyncio.to_thread(server.destroy)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(machine())
    for round_number in range(1, args.rounds + 1):
        for label, tls in (("plain", False), ("TLS + client certificate", True)):
            first, latencies = await write_latencies(tls, args.writes)
            print(
                f"round {round_number}, {label}: first write {first * 1000:.1f} ms, "
                f"then write {summary(latencies)}"
            )


if __name__ == "__main__":
    asyncio.run(main())
