"""Settings of one SC replica."""

from __future__ import annotations

import enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from election.etcd_access import EtcdAccess
from election.raft_node import is_loopback_address
from election.timing import ElectionTiming
from ha_sc.controllers.topics.validation import (
    MAX_PARTITIONS_IN_CLUSTER,
    MAX_PARTITIONS_PER_TOPIC,
    TopicLimits,
)
from ha_sc.protocol.tls import TlsFiles
from ha_sc.sc.tuning import ScTuning


class Backend(enum.StrEnum):
    RAFT = "raft"
    ETCD = "etcd"
    MEMORY = "memory"


class ScSettings(BaseModel):
    """How one SC replica is started (``ha-sc sc run`` flags)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    replica_id: str = Field(default="sc-1", min_length=1)
    """This replica's name in the election and in logs."""
    backend: Backend = Backend.RAFT
    """Where cluster objects are stored."""
    data_dir: Path = Path("~/.ha-sc/sc-1").expanduser()
    """Raft log and snapshots (raft backend)."""
    raft_address: str = "127.0.0.1:9010"
    """host:port of this replica's Raft node (raft backend)."""
    raft_peers: tuple[str, ...] = ()
    """host:port of the other replicas' Raft nodes (raft backend)."""
    raft_secret_file: Path | None = None
    """File holding the Raft group's shared secret: Raft traffic is then encrypted and
    authenticated with a key derived from it (every replica of the group needs the same)."""
    allow_unauthenticated_raft: bool = False
    """Accept a Raft address that is not loopback although the Raft port is not
    authenticated (no ``raft_secret_file``: whoever reaches it can run code in this process)."""
    etcd_endpoints: tuple[str, ...] = ("127.0.0.1:2379",)
    """etcd client endpoints (etcd backend)."""
    etcd_root: str = "/ha-sc/"
    """Key prefix under which this cluster's objects live in etcd."""
    etcd_ca: Path | None = None
    """CA of the etcd members' server certificates: set, etcd is reached over TLS."""
    etcd_cert: Path | None = None
    """Client certificate for etcd's ``--client-cert-auth`` (with ``etcd_key``)."""
    etcd_key: Path | None = None
    """Private key of ``etcd_cert``."""
    etcd_user: str | None = None
    """etcd user (etcd auth enabled), with ``etcd_password_file``."""
    etcd_password_file: Path | None = None
    """File (mode 0600) holding the etcd user's password."""
    etcd_max_txn_ops: int = Field(default=128, ge=2)
    """The etcd servers' ``--max-txn-ops``: batch writes go in transactions of at most
    this many operations (etcd backend)."""
    public_address: str = "127.0.0.1:9003"
    """host:port of this replica's public API (clients, CLI)."""
    private_address: str = "127.0.0.1:9004"
    """host:port where SPUs connect to the leader."""
    spu_tokens: Path | None = None
    """File of SPU registration tokens, a line ``<id> <token>`` per SPU (None: SPUs
    register unauthenticated)."""
    api_tokens: Path | None = None
    """File of public API bearer tokens, a line ``<read|admin> <token>`` each (None:
    the API is open)."""
    tls: TlsFiles | None = None
    """TLS on the public API and the private port (None: plain TCP); ``client_auth``
    asks SPUs on the private port for a certificate signed by the CA."""
    status_interval: float = Field(default=5.0, gt=0)
    """Seconds between status lines on the log."""
    lease_ttl: float | None = Field(default=None, gt=0)
    """How long the SC lease outlives its last renewal (None: the backend's default,
    0.8 s on Raft, 2 s on etcd)."""
    renew_deadline: float | None = Field(default=None, gt=0)
    """The leader stops acting when no renewal succeeded this long (None: the backend's
    default, 0.55 s on Raft, 1.5 s on etcd)."""
    renew_interval: float | None = Field(default=None, gt=0)
    """How often the leader renews (None: the backend's default, 0.1 s on Raft, 0.25 s
    on etcd)."""
    max_partitions_per_topic: int = Field(default=MAX_PARTITIONS_PER_TOPIC, ge=1)
    """Most partitions one topic may have: a create asking more is refused at the API, a
    spec with more written to the KV by hand becomes InvalidConfig, never an allocation."""
    max_partitions_in_cluster: int = Field(default=MAX_PARTITIONS_IN_CLUSTER, ge=1)
    """Most partitions all topics may have together, refused the same way; of topics
    written by hand that cross it together, the one created later is refused."""
    tuning: ScTuning = Field(default_factory=ScTuning)
    """Timings and sizes of the replica's parts (``--config`` file, ``--<group>-<field>``
    flags), checked together."""

    def topic_limits(self) -> TopicLimits:
        """The partition caps topic creates and the topic reducer check."""
        return TopicLimits(self.max_partitions_per_topic, self.max_partitions_in_cluster)

    def etcd_access(self) -> EtcdAccess:
        """How the etcd backend reaches etcd: the one model its KV and election share."""
        return EtcdAccess(
            endpoints=self.etcd_endpoints,
            ca_file=self.etcd_ca,
            cert_file=self.etcd_cert,
            key_file=self.etcd_key,
            user=self.etcd_user,
            password_file=self.etcd_password_file,
        )

    def election_timing(self) -> ElectionTiming:
        """The backend's default lease timings with what these settings set instead."""
        default = default_timing(self.backend)
        return default.model_validate(
            {
                **default.model_dump(),
                **{
                    name: value
                    for name in ("lease_ttl", "renew_deadline", "renew_interval")
                    if (value := getattr(self, name)) is not None
                },
            }
        )

    @model_validator(mode="after")
    def _raft_peers_distinct(self) -> ScSettings:
        if self.raft_address in self.raft_peers:
            raise ValueError(f"raft_peers must not contain this replica ({self.raft_address})")
        return self

    @model_validator(mode="after")
    def _raft_port_not_exposed(self) -> ScSettings:
        if (
            self.backend is Backend.RAFT
            and self.raft_secret_file is None
            and not self.allow_unauthenticated_raft
            and not is_loopback_address(self.raft_address)
        ):
            raise ValueError(
                f"raft address {self.raft_address} is not loopback, and the Raft port is not"
                " authenticated: anyone who can reach it can run code in this replica;"
                " pass --raft-secret-file, use a loopback address, or pass"
                " --allow-unauthenticated-raft on a"
                " network only trusted hosts can reach"
            )
        return self

    @model_validator(mode="after")
    def _etcd_access_consistent(self) -> ScSettings:
        try:
            self.etcd_access()
        except ValidationError as invalid:
            raise ValueError(invalid.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return self

    @model_validator(mode="after")
    def _timing_consistent(self) -> ScSettings:
        try:
            self.election_timing()
        except ValidationError as invalid:
            raise ValueError(invalid.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return self

    @model_validator(mode="after")
    def _slow_writes_noticed_before_the_deadline(self) -> ScSettings:
        # a renewal queued behind writes slower than this would miss its deadline before
        # the write window narrowed
        slow, deadline = self.tuning.write_window.slow, self.election_timing().renew_deadline
        if slow >= deadline:
            raise ValueError(
                f"write_window.slow {slow:g} s must stay below the lease's renew_deadline "
                f"{deadline:g} s, or renewals queue behind slow writes past their deadline "
                "before the write window narrows"
            )
        return self


def default_timing(backend: Backend) -> ElectionTiming:
    """The lease timings a backend uses unless told otherwise."""
    if backend is Backend.MEMORY:
        return ElectionTiming()
    if backend is Backend.ETCD:
        from election.etcd import DEFAULT_ETCD_TIMING

        return DEFAULT_ETCD_TIMING
    from election.raft import DEFAULT_TIMING

    return DEFAULT_TIMING
