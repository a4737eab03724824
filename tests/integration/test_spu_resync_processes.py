"""SPUs resync by cursor after an SC failover, with every member an OS process: the SC
leader is killed, the new one sends each SPU only the changes since its cursor (no full
sync), and what each SPU then holds is what the new leader's store says it should."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from ha_sc.client import AdminClient
from ha_sc.model import TopicReplicas, TopicSpec
from ha_sc.spu.state_file import read_state
from tests.integration.test_tracing_processes import cluster_dir, ha_sc
from tests.waiting import eventually

pytestmark = [pytest.mark.raft, pytest.mark.slow]

__all__ = ["cluster_dir"]  # the fixture, used by name
SPUS = (5001, 5002)
WAIT = 60


async def status(directory: Path) -> dict[str, Any]:
    doc = json.loads(await ha_sc(directory, "cluster", "status", "-O", "json"))
    assert isinstance(doc, dict)
    return doc


def spu_log(directory: Path, spu_id: int) -> str:
    return (directory / "logs" / f"spu-{spu_id}.log").read_text()


def held(directory: Path, spu_id: int) -> dict[str, tuple[int, tuple[int, ...]]] | None:
    """Partition -> (leader, replicas) the SPU's state file shows."""
    state = read_state(directory / f"spu-{spu_id}" / "spu-state.json")
    if state is None:
        return None
    return {r["partition"]: (r["leader"], tuple(r["replicas"])) for r in state["replicas"]}


async def wanted(client: AdminClient, spu_id: int) -> dict[str, tuple[int, tuple[int, ...]]]:
    """Partition -> (leader, replicas) of every partition the store places on ``spu_id``."""
    return {
        p.key: (p.spec.leader, tuple(p.spec.replicas))
        for p in await client.list_partitions()
        if spu_id in p.spec.replicas
    }


async def test_spus_resync_by_cursor_after_the_leader_is_killed(cluster_dir: Path) -> None:
    await ha_sc(cluster_dir, "cluster", "up", "--replicas", "3", "--spus", str(len(SPUS)))
    before = await status(cluster_dir)
    endpoints = [r["public"] for r in before["replicas"]]
    async with AdminClient(endpoints, timeout=30) as client:
        await client.create_topic(
            "orders", TopicSpec(replicas=TopicReplicas.new_computed(6, 2)), wait=WAIT
        )
        for spu_id in SPUS:
            expected = await wanted(client, spu_id)
            await eventually(
                lambda s=spu_id, e=expected: held(cluster_dir, s) == e,  # type: ignore[misc]
                timeout=WAIT,
                what=f"spu {spu_id} holds its replicas",
            )
    leader = before["leader"]
    os.kill(leader["pid"], signal.SIGKILL)

    def synced(spu_id: int) -> list[tuple[int, str]]:
        return [
            (int(m.group(2)), m.group(1))
            for m in re.finditer(r"(full sync|synced) at epoch (\d+)", spu_log(cluster_dir, spu_id))
            if int(m.group(2)) > leader["epoch"]
        ]

    for spu_id in SPUS:
        await eventually(lambda s=spu_id: synced(s), timeout=WAIT, what=f"spu {spu_id} synced")  # type: ignore[misc]
        epoch, how = synced(spu_id)[0]
        assert how == "synced", f"spu {spu_id} had a full sync at epoch {epoch}"
        assert f"synced at epoch {epoch} since topics@" in spu_log(cluster_dir, spu_id)

    new_leader = (await status(cluster_dir))["leader"]
    assert new_leader["id"] != leader["id"] and new_leader["epoch"] > leader["epoch"]
    sc_log = (cluster_dir / "logs" / f"{new_leader['id']}.log").read_text()
    for spu_id in SPUS:
        assert re.search(rf"spu {spu_id} registered from .*: resync since topics@", sc_log)
        assert not re.search(rf"spu {spu_id} registered from .*: full sync", sc_log)
    endpoints = [r["public"] for r in before["replicas"] if r["id"] != leader["id"]]
    async with AdminClient(endpoints, timeout=30) as client:
        for spu_id in SPUS:  # the specs each SPU holds are the new leader's
            assert held(cluster_dir, spu_id) == await wanted(client, spu_id)
        # and the session goes on with deltas from the cursor on
        await client.create_topic(
            "payments", TopicSpec(replicas=TopicReplicas.new_computed(2, 2)), wait=WAIT
        )
        for spu_id in SPUS:
            # the replica that answers a read may be a standby whose cache is a moment
            # behind the leader that answered the create
            async def placed(s: int = spu_id) -> bool:
                return any(key.startswith("payments-") for key in await wanted(client, s))

            await eventually(placed, timeout=WAIT, what=f"payments placed on spu {spu_id}")
            expected = await wanted(client, spu_id)
            await eventually(
                lambda s=spu_id, e=expected: held(cluster_dir, s) == e,  # type: ignore[misc]
                timeout=WAIT,
                what=f"spu {spu_id} holds the new topic's replicas",
            )
