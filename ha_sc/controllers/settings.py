"""Tunables of the leader's controller loop: when it plans, how it paces, how many writes.

Three groups of the SC's settings tree (``ha_sc.sc.tuning.ScTuning``); the loop is
given them when a term is won. Durations are in seconds (fields marked ``unit: s``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

SECONDS: JsonDict = {"unit": "s"}
"""Marks a field whose value is a duration in seconds (a flag of it takes units)."""


class ControllerSettings(BaseModel):
    """When the leader's controller loop runs a pass."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    resync: float = Field(default=1.0, gt=0, json_schema_extra=SECONDS)
    """Longest time between two passes while nothing changes (seconds): SPU health and
    partition leaders depend on time passing, not only on cache changes. One second
    keeps a failed SPU's partitions moving within about a second of its timeout."""
    min_interval: float = Field(default=0.05, gt=0, json_schema_extra=SECONDS)
    """Shortest time after a pass that wrote before the next (seconds), so a burst of cache
    changes, the pass's own echoed writes among them, costs one pass; after a pass that
    wrote nothing the next change is planned at once."""
    unavailable_pause: float = Field(default=0.5, gt=0, json_schema_extra=SECONDS)
    """Wait after a pass whose writes the store could not commit (seconds; no Raft
    majority, etcd unreachable): half a second retries soon without flooding a store
    that is down."""

    @model_validator(mode="after")
    def _min_interval_within_resync(self) -> ControllerSettings:
        if self.min_interval > self.resync:
            raise ValueError(
                f"controller.min_interval {self.min_interval:g} s must not exceed "
                f"controller.resync {self.resync:g} s"
            )
        return self


class PacingSettings(BaseModel):
    """How the controller loop spaces passes by what planning costs (a full pass over a
    large store plans for about a second, in slices on the event loop)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    pace: float = Field(default=2.0, ge=1)
    """A pass starts no sooner than this many times the last plan's duration after the
    last one started (a ratio): 2 keeps planning to at most half the leader's time."""
    resync_plans: float = Field(default=10.0, ge=1)
    """With nothing changing, a pass every this many plan durations when that is longer
    than ``controller.resync`` (a ratio): 10 keeps an idle large store's leader mostly
    idle. A full pass likewise comes no sooner than this many full plans apart."""
    full_resync: float = Field(default=60.0, gt=0, json_schema_extra=SECONDS)
    """Longest time between two passes that plan every object (seconds); the passes in
    between plan only what changed (``controllers/plan_scope.py``), which plans what a
    full pass would. A safety net, so rare: 60 s costs an idle 100k-partition leader one
    plan of about a second a minute."""

    @model_validator(mode="after")
    def _resync_no_sooner_than_pace(self) -> PacingSettings:
        if self.resync_plans < self.pace:
            raise ValueError(
                f"pacing.resync_plans {self.resync_plans:g} must be at least pacing.pace "
                f"{self.pace:g}: an idle pass would come sooner than a paced one"
            )
        return self


class WriteWindowSettings(BaseModel):
    """How many controller writes may be outstanding at once (``sc.write_window``): more
    while the store commits quickly, fewer when it does not, so the leader's lease
    renewals (in the same store) are not delayed behind a burst of writes."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    start: int = Field(default=16, ge=1)
    """Writes in flight at the start of a term (a count): 16 is what one Raft or etcd
    round trip absorbs without slowing commits."""
    limit: int = Field(default=64, ge=1)
    """The most writes ever in flight (a count): past 64 a Raft log gains little and the
    renewals queue behind the writes."""
    slow: float = Field(default=0.1, gt=0, json_schema_extra=SECONDS)
    """A write committing slower than this halves the window (seconds; at most once per
    this long): 100 ms is well inside the Raft lease's 0.55 s renew deadline."""
    batch: int = Field(default=100, ge=1)
    """Actions per batch write (a count): a wave's writes go to the store in batches of
    up to this many, each one Raft command (on etcd, transactions of up to
    ``etcd_max_txn_ops``) and one slot of the window; 1 writes each action on its own."""

    @model_validator(mode="after")
    def _start_within_limit(self) -> WriteWindowSettings:
        if self.start > self.limit:
            raise ValueError(
                f"write_window.start {self.start} must not exceed write_window.limit {self.limit}"
            )
        return self
