"""``cluster up`` from start to a ready cluster: members started, a leader, SPUs online."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from ha_sc.client import AdminClient, ApiError
from ha_sc.cluster.credentials import admin_token_file, api_tokens_file, cluster_ca
from ha_sc.cluster.launcher import (
    DEFAULT_REPLICAS,
    DEFAULT_SPUS,
    plan,
    slots_free,
    start_missing,
    start_replica,
)
from ha_sc.cluster.layout import ClusterLayout, LeaseTimings, ReplicaEntry, ScOptions, SpuEntry
from ha_sc.cluster.membership import join
from ha_sc.cluster.port_check import check_free
from ha_sc.cluster.port_registry import claim_block
from ha_sc.cluster.ports import block
from ha_sc.cluster.probe import replica_reports, spu_statuses
from ha_sc.cluster.processes import is_running
from ha_sc.model import CustomSpuSpec, Endpoint

Progress = Callable[[str], None]


class NotReady(Exception):
    """The cluster did not become ready in time; the message says what is missing."""


def _endpoint(address: str) -> Endpoint:
    host, port = address.rsplit(":", 1)
    return Endpoint(host=host, port=int(port))


async def bring_up(
    directory: Path,
    *,
    replicas: int | None,
    spus: int | None,
    backend: str | None,
    etcd_endpoints: list[str],
    timeout: float,
    progress: Progress,
    timings: LeaseTimings | None = None,
    base_port: int | None = None,
    sc_options: ScOptions | None = None,
    trace_dir: Path | None = None,
    api_auth: bool = False,
    tls: bool = False,
) -> ClusterLayout:
    """Call with the cluster file locked (``cluster_locked``). ``api_auth``: the public
    API needs a token from now on; ``tls``: every port serves TLS from now on (both
    recorded; members already running keep their settings until restarted)."""
    existing = ClusterLayout.load(directory)
    recorded = {r.id for r in existing.replicas} if existing is not None else set()
    slots = max(replicas or DEFAULT_REPLICAS, spus or DEFAULT_SPUS, 1)
    block_base = claim_block(
        directory,
        existing.base_port if existing is not None and existing.base_port else base_port,
        is_free=lambda base: slots_free(base, slots),
    )
    layout = plan(
        existing,
        replicas=replicas,
        spus=spus,
        backend=backend or (existing.backend if existing is not None else "raft"),
        etcd_endpoints=etcd_endpoints,
        timings=timings,
        base_port=base_port if base_port is not None else block_base,
        sc_options=sc_options,
        trace_dir=trace_dir,
    )
    if api_auth and layout.api_token_file is None:
        api_tokens_file(directory)  # makes the admin token
        layout.api_token_file = str(admin_token_file(directory).resolve())
        progress(f"public API needs a token; admin token in {layout.api_token_file}")
    if tls and layout.tls_ca is None:
        pids: list[int | None] = []
        if existing is not None:
            pids = [r.pid for r in existing.replicas] + [s.pid for s in existing.spus]
        if any(is_running(pid) for pid in pids):
            raise ValueError(
                "--tls: this cluster's members run on plain TCP; `ha-sc cluster down` "
                "first, then `cluster up --tls` starts them all with TLS"
            )
        layout.tls_ca = str(cluster_ca(directory).resolve())
        progress(f"TLS on every port; cluster CA {layout.tls_ca}")
    if existing is None or existing.base_port is None:
        progress(f"ports {block(block_base)} (base {block_base})")
    if existing is not None and existing.base_port is None and existing.replicas:
        progress(
            "this cluster was made before port blocks: its members keep the ports they "
            "have (`cluster down` and delete the directory to make it anew)"
        )
    layout.save(directory)  # ports are chosen once: recorded before anything starts
    check_free(layout)
    # a set that exists grows one replica at a time, each joining the running ones
    joining = [r for r in layout.replicas if recorded and r.id not in recorded]
    deadline = time.monotonic() + timeout
    started = start_missing(layout, directory, with_spus=False, skip={r.id for r in joining})
    if started.etcd:
        progress("started etcd")
    for name in started.replicas:
        progress(f"started SC replica {name}")
    members = [r for r in layout.replicas if r not in joining]
    leader = await _wait_for_leader(layout, members, deadline, progress)
    for replica in joining:
        start_replica(layout, replica, directory)
        if layout.backend == "raft":
            await join(layout, replica, timeout=max(1.0, deadline - time.monotonic()))
        progress(f"SC replica {replica.id} joined the set")
    if joining:
        leader = await _wait_for_leader(layout, layout.replicas, deadline, progress)
    await _register_spus(layout, layout.spus)
    started = start_missing(layout, directory, with_spus=True)
    for spu_id in started.spus:
        progress(f"started SPU {spu_id}")
    await _wait_for_spus(layout, leader, deadline, progress)
    return layout


async def _wait_for_leader(
    layout: ClusterLayout, members: list[ReplicaEntry], deadline: float, progress: Progress
) -> str:
    """Until one replica leads and every one of ``members`` answers."""
    names = {r.id for r in members}
    while True:
        reports = [r for r in await replica_reports(layout) if r.id in names]
        leaders = [r for r in reports if r.role == "leader"]
        if leaders and all(r.role != "down" for r in reports):
            progress(f"leader elected: {leaders[0].id} (epoch {leaders[0].epoch})")
            return leaders[0].public
        if time.monotonic() > deadline:
            down = [r.id for r in reports if r.role == "down"]
            raise NotReady(f"no SC leader elected in time (replicas not answering: {down})")
        await asyncio.sleep(0.2)


async def _register_spus(layout: ClusterLayout, spus: list[SpuEntry]) -> None:
    token = layout.api_headers().get("Authorization", "").removeprefix("Bearer ") or None
    async with AdminClient(
        layout.public_endpoints(), token=token, tls=layout.client_tls()
    ) as client:
        known = {spu.spec.id for spu in await client.list_spus()}
        for spu in spus:
            if spu.id in known:
                continue
            spec = CustomSpuSpec(
                id=spu.id,
                public_endpoint=_endpoint(spu.public),
                private_endpoint=_endpoint(spu.private),
            )
            try:
                await client.register_spu(spec)
            except ApiError as refused:
                if refused.status != 409:
                    raise


async def _wait_for_spus(
    layout: ClusterLayout, leader_public: str, deadline: float, progress: Progress
) -> None:
    wanted = {spu.id for spu in layout.spus}
    while True:
        statuses = await spu_statuses(layout, leader_public)
        online = {spu_id for spu_id, status in statuses.items() if status == "Online"}
        if wanted <= online:
            progress(f"{len(wanted)} SPUs online")
            return
        if time.monotonic() > deadline:
            missing = sorted(wanted - online)
            raise NotReady(f"SPUs not online in time: {missing}")
        await asyncio.sleep(0.2)
