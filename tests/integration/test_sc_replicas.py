"""Three SC replicas as OS processes on a real etcd: one leads, the controllers act,
a SIGKILLed leader is replaced by a standby that continues where it stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ha_sc.kv.etcd import EtcdKv
from ha_sc.model import (
    Endpoint,
    Kind,
    SpuResolution,
    SpuSpec,
    SpuStatus,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    decode_object,
    encode_value,
)
from tests.net import free_port
from tests.waiting import eventually

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

BECAME_LEADER = re.compile(r"became leader epoch=(\d+)")


class Replicas:
    def __init__(self, endpoint: str, root: str, base: Path) -> None:
        self.endpoint, self.root, self.base = endpoint, root, base
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        log = (self.base / f"{name}.log").open("ab")
        with log:
            self.procs[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ha_sc.cli",
                    "sc",
                    "run",
                    "--id",
                    name,
                    "--backend",
                    "etcd",
                    "--etcd-endpoint",
                    self.endpoint,
                    "--etcd-root",
                    self.root,
                    "--status-interval",
                    "1",
                    "--public-address",
                    f"127.0.0.1:{free_port()}",
                    "--private-address",
                    f"127.0.0.1:{free_port()}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self, name: str) -> str:
        return (self.base / f"{name}.log").read_text()

    def epochs(self) -> dict[str, list[int]]:
        return {n: [int(m) for m in BECAME_LEADER.findall(self.log(n))] for n in self.procs}

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def replicas(etcd_server: Any, tmp_path: Path) -> Iterator[Replicas]:
    group = Replicas(etcd_server.endpoint, f"/sc-{tmp_path.name}/", tmp_path)
    for name in ("sc-a", "sc-b", "sc-c"):
        group.start(name)
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture
async def kv(replicas: Replicas) -> AsyncIterator[EtcdKv]:
    client = EtcdKv([replicas.endpoint], root=replicas.root)
    yield client
    await client.close()


async def add_online_spu(kv: EtcdKv, spu_id: int) -> None:
    spec = SpuSpec(
        id=spu_id,
        public_endpoint=Endpoint(host="127.0.0.1", port=spu_id),
        private_endpoint=Endpoint(host="127.0.0.1", port=spu_id + 1000),
    )
    await kv.create(
        Kind.SPU.value,
        f"spu-{spu_id}",
        encode_value(spec, SpuStatus(resolution=SpuResolution.ONLINE)),
    )


async def topic_state(kv: EtcdKv, name: str) -> tuple[TopicResolution, int] | None:
    entry = await kv.get(Kind.TOPIC.value, name)
    if entry is None:
        return None
    topic = decode_object(
        Kind.TOPIC,
        name,
        entry.value,
        revision=entry.revision,
        create_revision=entry.create_revision,
    )
    partitions = [
        e for e in (await kv.list(Kind.PARTITION.value)).entries if e.key.startswith(f"{name}-")
    ]
    return topic.status.resolution, len(partitions)


async def test_the_next_leader_continues_after_a_crash(replicas: Replicas, kv: EtcdKv) -> None:
    for spu_id in (5001, 5002, 5003):
        await add_online_spu(kv, spu_id)
    spec = encode_value(TopicSpec(replicas=TopicReplicas.new_computed(3, 2)))
    await kv.create(Kind.TOPIC.value, "orders", spec)
    assert await eventually(
        lambda: _is(topic_state(kv, "orders"), (TopicResolution.PROVISIONED, 3))
    )
    leaders = {n: e for n, e in replicas.epochs().items() if e}
    assert len(leaders) == 1, leaders
    ((old, (old_epoch,)),) = leaders.items()

    os.kill(replicas.procs[old].pid, signal.SIGKILL)
    replicas.procs[old].wait(10)

    async def new_leader() -> tuple[str, int] | None:
        for name, epochs in replicas.epochs().items():
            if name != old and epochs:
                return name, epochs[-1]
        return None

    _name, new_epoch = await eventually(new_leader)
    assert new_epoch > old_epoch
    await kv.create(Kind.TOPIC.value, "payments", spec)
    assert await eventually(
        lambda: _is(topic_state(kv, "payments"), (TopicResolution.PROVISIONED, 3))
    )
    assert await topic_state(kv, "orders") == (TopicResolution.PROVISIONED, 3)
    for name in replicas.procs:
        log = replicas.log(name)
        assert "Traceback" not in log and "CRITICAL" not in log, log


async def _is(pending: Any, expected: Any) -> bool:
    return bool(await pending == expected)
