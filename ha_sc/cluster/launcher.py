"""``cluster up``: choose addresses once, start every member that is not running."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from ha_sc.cluster import ports
from ha_sc.cluster.cert_authority import KeyPair
from ha_sc.cluster.credentials import (
    api_tokens_file,
    member_certificate,
    raft_secret_file,
    spu_token_file,
    spu_tokens_file,
)
from ha_sc.cluster.layout import (
    ClusterLayout,
    EtcdEntry,
    LeaseTimings,
    ReplicaEntry,
    ScOptions,
    SpuEntry,
)
from ha_sc.cluster.port_holders import can_listen
from ha_sc.cluster.ports import Offset
from ha_sc.cluster.processes import free_address, is_running, python_module, spawn
from ha_sc.kv.etcd_limits import MANAGED_SERVER

log = logging.getLogger("ha_sc.cluster")

FIRST_SPU_ID = 5001
DEFAULT_REPLICAS = 3
DEFAULT_SPUS = 3
ETCD_BINARY = Path("/usr/bin/etcd")
MANAGED_COMPACTION_RETENTION = "1h"
"""How much history the launcher's etcd keeps (``--auto-compaction-retention``)."""


@dataclass
class Started:
    replicas: list[str] = field(default_factory=list)
    spus: list[int] = field(default_factory=list)
    etcd: bool = False


def plan(
    existing: ClusterLayout | None,
    *,
    replicas: int | None,
    spus: int | None,
    backend: str,
    etcd_endpoints: list[str],
    timings: LeaseTimings | None = None,
    base_port: int | None = None,
    sc_options: ScOptions | None = None,
    trace_dir: Path | None = None,
) -> ClusterLayout:
    """The layout to run: members already recorded keep their addresses; new ones get
    the ports of their slot in the cluster's block (``ha_sc.cluster.ports``) at
    ``base_port`` (the recorded block if there is one; without either, free loopback
    ports, as test harnesses want). ``replicas`` and ``spus`` (None: as recorded, else
    3). ``timings`` are fixed when the cluster is made (None: as recorded, or the
    backend's defaults). ``sc_options`` are recorded over the recorded ones and apply
    to the replicas started from now on."""
    if timings is not None:
        check_timings(backend, timings)
    layout = existing or ClusterLayout(
        backend=backend, timings=timings or LeaseTimings(), base_port=base_port
    )
    if existing is not None and existing.backend != backend:
        raise ValueError(
            f"this cluster runs on {existing.backend}; `cluster down` it first to change backend"
        )
    if existing is not None and timings is not None and timings != existing.timings:
        raise ValueError(
            f"this cluster's replicas run with {_described(existing.timings)}; every replica "
            "must use the same lease timings: `cluster down` it first to change them"
        )
    if base_port is not None and layout.base_port not in (None, base_port):
        raise ValueError(
            f"this cluster's ports are the block from {layout.base_port}; ports are chosen "
            "once when a cluster is made, so --base-port cannot move it"
        )
    if layout.base_port is None:
        layout.base_port = base_port
    if sc_options is not None:
        layout.sc_options = layout.sc_options.updated(sc_options)
    if trace_dir is not None:
        layout.trace_dir = str(trace_dir.resolve())
    if replicas is None:
        replicas = len(existing.replicas) if existing is not None else DEFAULT_REPLICAS
    if spus is None:
        spus = len(existing.spus) if existing is not None else DEFAULT_SPUS
    if existing is not None and len(existing.replicas) > replicas:
        raise ValueError(
            f"this cluster has {len(existing.replicas)} SC replicas; remove one with "
            "`ha-sc cluster remove REPLICA`"
        )
    base = layout.base_port
    while len(layout.replicas) < replicas:
        name = f"sc-{_next_replica_number(layout)}"
        slot = None if base is None else ports.replica_slot(name)
        layout.replicas.append(
            ReplicaEntry(
                id=name,
                public=_address(base, slot, Offset.SC_PUBLIC),
                private=_address(base, slot, Offset.SC_PRIVATE),
                raft=_address(base, slot, Offset.RAFT) if backend == "raft" else "",
            )
        )
    while len(layout.spus) < spus:
        spu_id = FIRST_SPU_ID + len(layout.spus)
        slot = None if base is None else ports.spu_slot(spu_id, FIRST_SPU_ID)
        layout.spus.append(
            SpuEntry(
                id=spu_id,
                public=_address(base, slot, Offset.SPU_PUBLIC),
                private=_address(base, slot, Offset.SPU_PRIVATE),
                metrics=_address(base, slot, Offset.SPU_METRICS),
            )
        )
    for spu in layout.spus:  # a cluster made before SPUs served metrics
        if not spu.metrics:
            slot = None if base is None else ports.spu_slot(spu.id, FIRST_SPU_ID)
            spu.metrics = _address(base, slot, Offset.SPU_METRICS)
    if backend == "etcd" and layout.etcd is None:
        layout.etcd = EtcdEntry(
            endpoints=etcd_endpoints or [_address(base, 0, Offset.ETCD_CLIENT)],
            managed=not etcd_endpoints,
            peer="" if etcd_endpoints else _address(base, 0, Offset.ETCD_PEER),
        )
    return layout


def slots_free(base: int, slots: int, host: str = "127.0.0.1") -> bool:
    """Whether every port of the first ``slots`` slots of the block at ``base`` can be
    listened on (a block is probed before a new cluster claims it)."""
    return all(
        can_listen(host, ports.slot_port(base, slot, offset))
        for slot in range(min(slots, ports.SLOTS))
        for offset in Offset
    )


def _address(base: int | None, slot: int | None, offset: Offset) -> str:
    if base is None or slot is None:
        return free_address()
    return ports.address(base, slot, offset)


def check_timings(backend: str, timings: LeaseTimings) -> None:
    """Raises ValueError, naming the flag, when ``timings`` cannot work on ``backend``."""
    from ha_sc.model.codec import format_validation_error
    from ha_sc.sc.settings import ScSettings

    try:
        ScSettings.model_validate({"backend": backend, **timings.model_dump(exclude_none=True)})
    except ValidationError as invalid:
        raise ValueError(format_validation_error(invalid)) from None


def _described(timings: LeaseTimings) -> str:
    return " ".join(timings.flags()) or "the default lease timings"


def _next_replica_number(layout: ClusterLayout) -> int:
    """Names are never reused: a removed replica's name (and data dir) stays gone."""
    numbers = [int(r.id.removeprefix("sc-")) for r in layout.replicas if r.id[3:].isdigit()]
    number = max([*numbers, layout.last_replica_number]) + 1
    layout.last_replica_number = number
    return number


def tls_flags(layout: ClusterLayout, directory: Path, name: str, *addresses: str) -> list[str]:
    """``--tls-*`` flags of member ``name`` listening on ``addresses`` (none unless the
    cluster serves TLS): its certificate, the CA, and client certificates required on
    its private port (only members dial it, each with its own certificate)."""
    if layout.tls_ca is None:
        return []
    pair = member_certificate(directory, name, addresses)
    return [
        "--tls-cert", str(pair.cert),
        "--tls-key", str(pair.key),
        "--tls-ca", layout.tls_ca,
        "--tls-client-auth",
    ]  # fmt: skip


def replica_args(layout: ClusterLayout, replica: ReplicaEntry, directory: Path) -> list[str]:
    args = [
        "sc", "run",
        "--id", replica.id,
        "--backend", layout.backend,
        "--data-dir", str(directory / replica.id),
        "--public-address", replica.public,
        "--private-address", replica.private,
        *layout.timings.flags(),
        *layout.sc_options.flags(),
        *layout.trace_flags(replica.id),
        "--spu-tokens", str(spu_tokens_file(directory, [spu.id for spu in layout.spus])),
        *tls_flags(layout, directory, replica.id, replica.public, replica.private),
    ]  # fmt: skip
    if layout.api_token_file is not None:
        args += ["--api-tokens", str(api_tokens_file(directory))]
    if layout.backend == "raft":
        args += ["--raft-address", replica.raft]
        args += ["--raft-secret-file", str(raft_secret_file(directory))]
        for other in layout.replicas:
            if other.id != replica.id:
                args += ["--raft-peer", other.raft]
    elif layout.etcd is not None:
        args += etcd_client_flags(layout, directory, replica)
    return python_module("ha_sc.cli", *args)


def etcd_client_flags(layout: ClusterLayout, directory: Path, replica: ReplicaEntry) -> list[str]:
    """How replica ``replica`` reaches the cluster's etcd: over TLS with its own
    certificate when the launcher runs etcd for a TLS cluster, else as given."""
    assert layout.etcd is not None
    if not layout.etcd.managed:
        return [arg for endpoint in layout.etcd.endpoints for arg in ("--etcd-endpoint", endpoint)]
    # the launcher's own etcd allows larger transactions than etcd's default
    limits = ["--etcd-max-txn-ops", str(MANAGED_SERVER.max_txn_ops)]
    if layout.tls_ca is None:
        return [*(arg for e in layout.etcd.endpoints for arg in ("--etcd-endpoint", e)), *limits]
    pair = member_certificate(directory, replica.id, [replica.public, replica.private])
    return [
        *limits,
        *(arg for e in layout.etcd.endpoints for arg in ("--etcd-endpoint", f"https://{e}")),
        "--etcd-ca", layout.tls_ca,
        "--etcd-cert", str(pair.cert),
        "--etcd-key", str(pair.key),
    ]  # fmt: skip


def spu_args(layout: ClusterLayout, spu: SpuEntry, directory: Path) -> list[str]:
    args = [
        "spu", "run",
        "--id", str(spu.id),
        "--public", spu.public,
        "--private", spu.private,
        "--data-dir", str(directory / f"spu-{spu.id}"),
        "--token-file", str(spu_token_file(directory, spu.id)),
        *layout.trace_flags(f"spu-{spu.id}"),
        *tls_flags(layout, directory, f"spu-{spu.id}", spu.public, spu.private),
    ]  # fmt: skip
    for private in layout.private_endpoints():
        args += ["--sc-private", private]
    if spu.metrics:
        args += ["--metrics-address", spu.metrics]
    return python_module("ha_sc.cli", *args)


def start_replica(layout: ClusterLayout, replica: ReplicaEntry, directory: Path) -> None:
    replica.pid = spawn(
        replica_args(layout, replica, directory), directory / "logs" / f"{replica.id}.log"
    )
    layout.save(directory)


def etcd_args(
    endpoint: str, peer: str, directory: Path, tls: tuple[str, KeyPair] | None = None
) -> list[str]:
    """The launcher's one-member etcd, with the limits of ``MANAGED_SERVER`` (a topic of
    1000 partitions in one transaction, room for a 100k-partition store); with ``tls``
    (the CA file and etcd's certificate) its client port serves TLS and takes only
    clients with a certificate of that CA."""
    scheme = "http" if tls is None else "https"
    args = [
        str(ETCD_BINARY),
        "--name", "ha-sc",
        "--data-dir", str(directory / "etcd"),
        "--listen-client-urls", f"{scheme}://{endpoint}",
        "--advertise-client-urls", f"{scheme}://{endpoint}",
        "--listen-peer-urls", f"http://{peer}",
        "--initial-advertise-peer-urls", f"http://{peer}",
        "--initial-cluster", f"ha-sc=http://{peer}",
        *MANAGED_SERVER.flags(),
        # history older than an hour goes: the database stays a few copies of the store
        "--auto-compaction-mode", "periodic",
        "--auto-compaction-retention", MANAGED_COMPACTION_RETENTION,
    ]  # fmt: skip
    if tls is not None:
        ca, pair = tls
        args += [
            "--cert-file", str(pair.cert),
            "--key-file", str(pair.key),
            "--client-cert-auth",
            "--trusted-ca-file", ca,
        ]  # fmt: skip
    return args


def start_missing(
    layout: ClusterLayout,
    directory: Path,
    *,
    with_spus: bool = True,
    skip: Collection[str] = (),
) -> Started:
    """Start every member of ``layout`` whose PID is not running, but the replicas named in
    ``skip``; record the new PIDs."""
    started = Started()
    logs = directory / "logs"
    etcd = layout.etcd
    if etcd is not None and etcd.pid is not None and not is_running(etcd.pid, "etcd"):
        etcd.pid = None
    if etcd is not None and etcd.managed and etcd.pid is None:
        if not ETCD_BINARY.exists():
            raise FileNotFoundError(
                f"{ETCD_BINARY} not found: install etcd-server, or pass --etcd-endpoint"
            )
        peer = etcd.peer or free_address()  # a file from before etcd's peer was recorded
        tls = (
            None
            if layout.tls_ca is None
            else (layout.tls_ca, member_certificate(directory, "etcd", [etcd.endpoints[0]]))
        )
        etcd.pid = spawn(etcd_args(etcd.endpoints[0], peer, directory, tls), logs / "etcd.log")
        started.etcd = True
    for replica in layout.replicas:
        if replica.id not in skip and not is_running(replica.pid):
            replica.pid = spawn(
                replica_args(layout, replica, directory), logs / f"{replica.id}.log"
            )
            started.replicas.append(replica.id)
    if with_spus:
        for spu in layout.spus:
            if not is_running(spu.pid):
                spu.pid = spawn(spu_args(layout, spu, directory), logs / f"spu-{spu.id}.log")
                started.spus.append(spu.id)
    layout.save(directory)
    return started
