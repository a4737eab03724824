"""The cluster file: where every member of a local cluster listens and which PID runs it.

``cluster up`` writes it to ``DIR/cluster.json`` (DIR: ``--dir``, else ``$HA_SC_DIR``,
else ``~/.ha-sc``); later commands, the client commands included, find the cluster
through it without flags. Addresses are chosen once and kept, so a member started
again comes back where the others expect it.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ha_sc.durable import replace_atomically
from ha_sc.filelock import held
from ha_sc.protocol.tls import TlsFiles, client_context
from ha_sc.secret_file import read_secret

CLUSTER_FILE = "cluster.json"
LOCK_FILE = "cluster.lock"


def cluster_dir(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit.expanduser()
    env = os.environ.get("HA_SC_DIR")
    return Path(env).expanduser() if env else Path("~/.ha-sc").expanduser()


class ReplicaEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    public: str
    """host:port of its public API."""
    private: str
    """host:port where SPUs connect."""
    raft: str = ""
    """host:port of its Raft node (raft backend)."""
    pid: int | None = None


class SpuEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    public: str
    private: str
    metrics: str = ""
    """host:port of its /metrics; empty in a cluster.json from before metrics."""
    pid: int | None = None


class EtcdEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoints: list[str]
    managed: bool = False
    """True when the launcher runs this etcd itself (no endpoints were given)."""
    peer: str = ""
    """host:port of a managed etcd's peer URL."""
    pid: int | None = None


class LeaseTimings(BaseModel):
    """The SC lease timings every replica of the cluster runs with (seconds; None: the
    backend's default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lease_ttl: float | None = None
    renew_deadline: float | None = None
    renew_interval: float | None = None

    def flags(self) -> list[str]:
        """As ``sc run`` flags."""
        args: list[str] = []
        for name, value in self.model_dump(exclude_none=True).items():
            args += [f"--{name.replace('_', '-')}", f"{value:g}"]
        return args


class ScOptions(BaseModel):
    """What every SC replica is started with beyond its addresses and lease timings:
    ``cluster up``'s ``--sc-config``, settings-tree flags and partition caps, kept so a
    re-run starts replicas the same way (a re-run's own values replace these)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config: str | None = None
    """Absolute path of the SC config file (read by each replica when it starts)."""
    tuning: dict[str, dict[str, float | int]] = Field(default_factory=dict)
    """Settings-tree values given as flags, by group and field."""
    max_partitions_per_topic: int | None = None
    max_partitions_in_cluster: int | None = None

    def updated(self, newer: ScOptions) -> ScOptions:
        """These options with what ``newer`` sets over them."""
        tuning = {group: dict(values) for group, values in self.tuning.items()}
        for group, values in newer.tuning.items():
            tuning.setdefault(group, {}).update(values)
        return ScOptions(
            config=newer.config or self.config,
            tuning=tuning,
            max_partitions_per_topic=newer.max_partitions_per_topic
            or self.max_partitions_per_topic,
            max_partitions_in_cluster=newer.max_partitions_in_cluster
            or self.max_partitions_in_cluster,
        )

    def flags(self) -> list[str]:
        """As ``sc run`` flags (``--config``, ``--<group>-<field>``, the caps)."""
        args = ["--config", self.config] if self.config is not None else []
        for group, values in self.tuning.items():
            for name, value in values.items():
                args += [f"--{group}-{name}".replace("_", "-"), repr(value)]
        for cap in ("max_partitions_per_topic", "max_partitions_in_cluster"):
            if (limit := getattr(self, cap)) is not None:
                args += [f"--{cap.replace('_', '-')}", str(limit)]
        return args


class ClusterLayout(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str = "raft"
    base_port: int | None = None
    """First port of the cluster's block (see ``ha_sc.cluster.ports``); None in files
    written before blocks, whose members keep the addresses they have."""
    timings: LeaseTimings = Field(default_factory=LeaseTimings)
    sc_options: ScOptions = Field(default_factory=ScOptions)
    """Config file, settings and caps every SC replica is started with."""
    trace_dir: str | None = None
    """``cluster up --trace-file DIR``: each member started writes its spans to
    ``DIR/<member>.jsonl``."""
    api_token_file: str | None = None
    """``cluster up --api-auth``: the admin token file of the public API (its replicas
    run with ``--api-tokens``); the launcher and the CLI send it."""
    tls_ca: str | None = None
    """``cluster up --tls``: the CA file that signed every member's certificate (under
    ``DIR/secrets/tls``); every port serves TLS and the launcher and the CLI check
    the members with it."""
    last_replica_number: int = 0
    """The highest N of any ``sc-N`` this cluster has had, removed ones included."""
    replicas: list[ReplicaEntry] = Field(default_factory=list)
    spus: list[SpuEntry] = Field(default_factory=list)
    etcd: EtcdEntry | None = None

    def trace_flags(self, member: str) -> list[str]:
        """``--trace-file`` for ``member`` (an SC replica's id, ``spu-<id>``), if traced."""
        if self.trace_dir is None:
            return []
        return ["--trace-file", str(Path(self.trace_dir) / f"{member}.jsonl")]

    @classmethod
    def load(cls, directory: Path) -> ClusterLayout | None:
        path = directory / CLUSTER_FILE
        if not path.exists():
            return None
        return cls.model_validate_json(path.read_text())

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        replace_atomically(directory / CLUSTER_FILE, self.model_dump_json(indent=2).encode())

    def api_headers(self) -> dict[str, str]:
        """The ``Authorization`` header of calls to the public API (none if it is open)."""
        if self.api_token_file is None:
            return {}
        return {"Authorization": f"Bearer {read_secret(Path(self.api_token_file))}"}

    @property
    def scheme(self) -> str:
        """How the public API is reached: ``https`` when the cluster serves TLS."""
        return "http" if self.tls_ca is None else "https"

    def client_tls(self) -> ssl.SSLContext | None:
        """The context the members' certificates are checked with (None: plain TCP)."""
        return None if self.tls_ca is None else client_context(TlsFiles(ca=Path(self.tls_ca)))

    def public_endpoints(self) -> list[str]:
        return [r.public for r in self.replicas]

    def private_endpoints(self) -> list[str]:
        return [r.private for r in self.replicas]


@contextlib.contextmanager
def cluster_locked(
    directory: Path, waiting: Callable[[int | None], None] | None = None
) -> Iterator[None]:
    """Held around every read-modify-write of the cluster file (``cluster up``,
    ``remove``, ``down``), so two commands on one DIR take turns and lose nothing;
    ``waiting(holder_pid)`` is called if another command holds it."""
    with held(directory / LOCK_FILE, waiting=waiting):
        yield
