"""The events of a chaos run's history, one JSON object per line of ``history.jsonl``.

Every event has a ``type`` and a wall-clock time (seconds since the epoch, so events
from several processes line up): client operations (``produce``, ``read``; ``bulk``
and ``span`` for the bulk load's calls and reads), SC leadership as observed
(``leader``), SPU epoch-fence decisions (``control``), fault windows (``fault``) and
the scenario's phases (``phase``).
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Produce(_Event):
    """One record sent by a producer: unique by (producer, seq)."""

    type: Literal["produce"] = "produce"
    producer: str
    seq: int
    topic: str
    partition: int
    acks: Literal["all", "leader"]
    start: float
    end: float
    outcome: Literal["ok", "fail", "unknown"]
    """ok: acknowledged; fail: refused for sure (not written); unknown: no answer, it may
    or may not be in the log (a timeout, a connection lost mid-request)."""
    offset: int | None = None
    """The offset the acknowledgement gave."""
    error: str | None = None


class Read(_Event):
    """One record a consumer read back."""

    type: Literal["read"] = "read"
    reader: str
    """Which consumer: a live one during the run, or ``final`` (the drain's full read)."""
    t: float
    topic: str
    partition: int
    offset: int
    producer: str
    seq: int


class Bulk(_Event):
    """Records of the bulk load acknowledged (or not) together: ``count`` records of
    ``producer`` with seqs ``first_seq`` onward, at consecutive offsets of one
    partition from ``offset``. The bulk load is checked on these and on ``Span`` reads,
    not record by record (a hundred thousand records a second would not fit)."""

    type: Literal["bulk"] = "bulk"
    producer: str
    topic: str
    partition: int
    first_seq: int
    count: int
    acks: Literal["all", "leader"]
    start: float
    end: float
    outcome: Literal["ok", "unknown"]
    offset: int | None = None
    """The base offset the acknowledgement gave."""
    error: str | None = None


class Span(_Event):
    """Records read back in one run: offsets ``offset`` onward holding seqs ``seq``
    onward of ``producer``, ``count`` of them (the bulk load's reads)."""

    type: Literal["span"] = "span"
    reader: str
    t: float
    topic: str
    partition: int
    offset: int
    producer: str
    seq: int
    count: int


class Leader(_Event):
    """What one SC replica said of itself, when that changed (or what its log says)."""

    type: Literal["leader"] = "leader"
    t: float
    replica: str
    role: Literal["leader", "standby", "unreachable"]
    epoch: int | None = None
    """The epoch of the leader the replica names (its own when it leads)."""
    leader: str | None = None
    """The replica it names as leader."""
    source: Literal["poll", "log"] = "poll"


class Control(_Event):
    """One SPU epoch-fence decision (from the SPU's ``control-events.jsonl``)."""

    type: Literal["control"] = "control"
    t: float
    spu: int
    epoch: int
    outcome: Literal["accept", "refuse"]
    message: str = ""
    highest: int | None = None


class Fault(_Event):
    """A fault injected or healed."""

    type: Literal["fault"] = "fault"
    t: float
    name: str
    target: str
    action: Literal["inject", "heal"]


class Phase(_Event):
    """The scenario entered a phase: baseline, fault, recovery, drain, check."""

    type: Literal["phase"] = "phase"
    t: float
    name: str


Event: TypeAlias = Annotated[
    Produce | Read | Bulk | Span | Leader | Control | Fault | Phase, Field(discriminator="type")
]
EVENT = TypeAdapter[Event](Event)
