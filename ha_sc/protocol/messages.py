"""The messages of the SC <-> SPU control channel (the SC's private API).

Every message is a JSON object whose ``type`` field names it. The SPU sends
``register`` once, first, then ``status_report`` at least every 400 ms (which
doubles as its heartbeat). The SC answers a register with ``not_leader`` or
``refused`` (and closes), or with ``full_sync`` followed by ``delta`` messages.
Every SC message carries the leader's ``epoch``, which the SPU fences on, and a
``trace`` context.

Envelopes ignore fields they do not know, so an SC and an SPU of adjacent
versions can still talk; the specs they carry are as strict as the stored ones.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from ha_sc.model.ints import SpuId
from ha_sc.model.spu import SpuSpec

PARTITION_KEY_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?-(?:0|[1-9][0-9]*)$"
"""``validate_partition_key``'s rule as one pattern: a topic name (a DNS-1123 label) and
the partition's index."""

PartitionKey = Annotated[str, StringConstraints(pattern=PARTITION_KEY_PATTERN)]
"""A partition's key, ``<topic>-<index>``: checked by pattern, without a call into Python
per key (an SPU decodes 67k of them in a full sync at 100k partitions)."""

Offset = Annotated[int, Field(ge=0)]
FetchKeyHex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""An SPU's replica-fetch key (32 bytes) as hex."""


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class _ScMessage(_Message):
    """What every SC -> SPU message carries."""

    epoch: int = Field(ge=0)
    """The epoch of the leader that sent it (``not_leader``: of the leader it names, 0 if
    none is known)."""
    trace: dict[str, str] = Field(default_factory=dict)
    """Trace context propagated to the SPU."""


class SpecCursor(_Message):
    """The store revisions an SPU's replica specs reflect: every topic change up to
    ``topics`` and every partition change up to ``partitions`` is in them. One per kind:
    a kind nobody writes keeps an old revision in the caches, and would hold a single
    cursor back. SPU specs need none: a resync sends them all."""

    topics: int = Field(ge=0)
    partitions: int = Field(ge=0)

    def __str__(self) -> str:
        return f"topics@{self.topics},partitions@{self.partitions}"


# SPU -> SC


class Register(_Message):
    """The SPU's first message: who it is."""

    type: Literal["register"] = "register"
    spu_id: SpuId
    left_epoch: int | None = None
    """The epoch of the leader this SPU just lost (its session ended without a word):
    a replica that knows of no newer leader holds the registration a while rather
    than send the SPU back to the one it lost."""
    token: str | None = Field(default=None, repr=False, exclude_if=lambda token: token is None)
    """The SPU's registration token, proving ``spu_id`` to an SC started with SPU tokens
    (``sc run --spu-tokens``); never logged."""
    cursor: SpecCursor | None = Field(default=None, exclude_if=lambda cursor: cursor is None)
    """What the SPU's specs reflect (the last ``cursor`` it applied), if it holds any: a
    leader answers with a ``delta`` whose ``since`` is this cursor instead of a
    ``full_sync``, unless its cache does not reflect the cursor yet."""


class Watch(_Message):
    """The first message of an SPU's watch connection to an SC replica: no session, only
    ``leader_notice``s each time the replica sees a newer leader than it last told of."""

    type: Literal["watch"] = "watch"
    spu_id: SpuId
    token: str | None = Field(default=None, repr=False, exclude_if=lambda token: token is None)
    """The SPU's registration token, as in ``register``: an SC started with SPU tokens
    refuses a watch without the right one; never logged."""


class ReplicaReport(_Message):
    """The offsets of one replica the SPU holds."""

    partition: PartitionKey
    leo: Offset
    """Log end offset: the offset the next record will get."""
    hw: Offset
    """High watermark: records below it are committed."""
    lsr: int | None = Field(default=None, ge=0)
    """Live replicas (followers in sync); reported by the leader only."""


class StatusReport(_Message):
    """The SPU's replica offsets; also its heartbeat.

    The first report of a session is full (``full``: every replica the SPU holds);
    later ones carry only the replicas whose offsets changed since the previous
    report and the partitions the SPU no longer holds (``removed``), so a quiet
    SPU with many replicas sends small heartbeats.
    """

    type: Literal["status_report"] = "status_report"
    spu_id: SpuId
    replicas: list[ReplicaReport] = Field(default_factory=list)
    full: bool = True
    removed: list[PartitionKey] = Field(default_factory=list)
    trace: dict[str, str] = Field(default_factory=dict)
    """Trace context (W3C traceparent) of the SPU's apply this report follows, if traced."""


# SC -> SPU


class ReplicaStorage(_Message):
    """How a replica's log keeps its records: the owning topic's retention and segment
    settings (Fluvio's ``TopicStorageConfig``). None: the SPU's default (1 GiB segments,
    nothing deleted by age or size)."""

    segment_size: int | None = Field(default=None, gt=0)
    """Bytes per log segment."""
    retention_time_seconds: int | None = Field(default=None, gt=0)
    """A closed segment whose newest record is older than this is deleted."""
    max_partition_size: int | None = Field(default=None, gt=0)
    """The oldest closed segments are deleted while the replica holds more bytes than this."""

    @property
    def retains_all(self) -> bool:
        """Nothing is ever deleted by age or size."""
        return self.retention_time_seconds is None and self.max_partition_size is None


NO_STORAGE_SETTINGS = ReplicaStorage()


class ReplicaSpec(_Message):
    """Where one partition is replicated and which SPU leads it, and how its logs keep
    records."""

    partition: PartitionKey
    leader: SpuId
    replicas: list[SpuId]
    storage: ReplicaStorage = NO_STORAGE_SETTINGS
    """Absent in messages of SCs before it: the defaults."""
    generation: int | None = Field(default=None, ge=1)
    """The partition's identity: its create revision in the store. A partition deleted
    and created again under the same key has another, and its replicas start empty.
    Absent in messages of SCs before it: any log of that key is the replica's own."""

    @model_validator(mode="after")
    def _leader_is_replica(self) -> Self:
        if len(set(self.replicas)) != len(self.replicas):
            raise PydanticCustomError(
                "duplicate_replica",
                "replicas {replicas} repeat an spu id",
                {"replicas": self.replicas},
            )
        if self.leader not in self.replicas:
            raise PydanticCustomError(
                "leader_not_replica",
                "leader {leader} is not one of the replicas {replicas}",
                {"leader": self.leader, "replicas": self.replicas},
            )
        return self


class NotLeader(_ScMessage):
    """This SC replica does not lead; try the named one. The SC closes after it."""

    type: Literal["not_leader"] = "not_leader"
    leader_private: str | None
    """The leader's private address ``host:port``, or None when none is known."""


class LeaderNotice(_ScMessage):
    """On a watch connection: a leader of ``epoch`` won, reach it at ``leader_private``.
    An SPU leaves its leader at once for a notice above the highest epoch it has seen."""

    type: Literal["leader_notice"] = "leader_notice"
    leader_private: str = Field(min_length=1)


class Refused(_ScMessage):
    """The leader will not serve this SPU (say, an unknown id). The SC closes after it."""

    type: Literal["refused"] = "refused"
    reason: str


class FullSync(_ScMessage):
    """Every SPU spec and replica spec: the SPU replaces what it had with these."""

    type: Literal["full_sync"] = "full_sync"
    spus: list[SpuSpec] = Field(default_factory=list)
    replicas: list[ReplicaSpec] = Field(default_factory=list)
    sc_members: list[str] = Field(default_factory=list)
    """Private addresses of the SC members (replicas) the leader knows of: the SPU adds them to
    those it tries, so it finds the set after replicas were added or removed."""
    fetch_keys: dict[SpuId, FetchKeyHex] | None = Field(
        default=None, repr=False, exclude_if=lambda keys: keys is None
    )
    """Every SPU's replica-fetch key (protocol/fetch_proof.py) by id, when the SC checks SPU
    tokens: a leader SPU accepts replica fetches only from followers proven with these.
    None: the SC runs without SPU tokens, and replica fetches are not checked."""
    cursor: SpecCursor | None = Field(default=None, exclude_if=lambda c: c is None)
    """What these specs reflect: the SPU's cursor once applied (None: an SC that keeps
    no cursors)."""


class Delta(_ScMessage):
    """What changed since the previous message. An empty one is a keepalive."""

    type: Literal["delta"] = "delta"
    spus_changed: list[SpuSpec] = Field(default_factory=list)
    spus_removed: list[SpuId] = Field(default_factory=list)
    replicas_changed: list[ReplicaSpec] = Field(default_factory=list)
    replicas_removed: list[PartitionKey] = Field(default_factory=list)
    fetch_keys: dict[SpuId, FetchKeyHex] | None = Field(
        default=None, repr=False, exclude_if=lambda keys: keys is None
    )
    """The whole table of replica-fetch keys again, when it changed (the SC's token file
    did); None: unchanged."""
    cursor: SpecCursor | None = Field(default=None, exclude_if=lambda c: c is None)
    """What the SPU's specs reflect once this is applied: its cursor (None: an SC that
    keeps no cursors, and the SPU then has none)."""
    since: SpecCursor | None = Field(default=None, exclude_if=lambda c: c is None)
    """Set only on the first message of a session resumed by cursor (instead of a full
    sync): the SPU's cursor this delta starts from. It then carries every SPU spec (the
    SPU replaces its directory with them), the replica specs changed since the cursor,
    and ``replicas_held``."""
    replicas_held: list[PartitionKey] | None = Field(
        default=None, repr=False, exclude_if=lambda held: held is None
    )
    """With ``since``: every partition the SPU is to hold; it drops any other. One that
    lacks one of them asks for a full sync."""
    sc_members: list[str] = Field(default_factory=list, exclude_if=lambda members: not members)
    """With ``since``: as in ``full_sync``."""

    @property
    def is_resync(self) -> bool:
        """The first message of a session resumed from the SPU's cursor."""
        return self.since is not None

    @property
    def is_empty(self) -> bool:
        return not (
            self.since is not None
            or self.spus_changed
            or self.spus_removed
            or self.replicas_changed
            or self.replicas_removed
            or self.fetch_keys is not None
        )


SpuMessage: TypeAlias = Annotated[Register | Watch | StatusReport, Field(discriminator="type")]
"""What an SPU sends (and the SC reads)."""

ScMessage: TypeAlias = Annotated[
    NotLeader | Refused | FullSync | Delta | LeaderNotice, Field(discriminator="type")
]
"""What the SC sends (and an SPU reads)."""

Message: TypeAlias = (
    Register | Watch | StatusReport | NotLeader | Refused | FullSync | Delta | LeaderNotice
)
"""Any message of the channel."""
