"""Settings of the SC's side of the SPU control link, and the SPU timings it relies on.

Two groups of the SC's settings tree (``ha_sc.sc.tuning.ScTuning``): ``spu_link``,
how this SC talks to SPUs, and ``spu``, what it assumes of the SPUs' own settings
(``ha-sc spu run`` flags, defaulting to the SPU's defaults): the hold and the
keepalive must fit inside the SPU's wait, and the grace a new leader gives the SPUs
is derived from both (``spu_grace``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ha_sc.controllers.settings import SECONDS
from ha_sc.protocol.link_timing import DEFAULT_HEALTH_TIMEOUT
from ha_sc.spu.settings import SpuSettings


def _spu_default(name: str) -> float:
    default = SpuSettings.model_fields[name].default
    assert isinstance(default, float)
    return default


class SpuLinkSettings(BaseModel):
    """How this SC replica talks to the SPUs connected to it."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    health_timeout: float = Field(default=DEFAULT_HEALTH_TIMEOUT, gt=0, json_schema_extra=SECONDS)
    """Silence from an SPU after which its connection is closed and it counts as
    offline (seconds): 1.2 s is three of the SPU's 0.4 s longest report intervals,
    so one late report costs nothing."""
    keepalive_interval: float = Field(default=0.5, gt=0, json_schema_extra=SECONDS)
    """Time between the SC's messages to an SPU when nothing changes (seconds): 0.5 s
    is a quarter of the SPU's 2 s sc_timeout, so SPUs never leave a live leader."""
    hold: float = Field(default=1.0, ge=0, json_schema_extra=SECONDS)
    """Longest a replica holds an SPU's registration around a failover, until it knows
    the new leader, instead of redirecting at once (seconds): 1 s covers a Raft lease
    handover and stays below the SPU's 2 s wait for an answer."""
    grace_margin: float = Field(default=0.5, ge=0, json_schema_extra=SECONDS)
    """Room added to a new leader's grace for the SPUs (seconds) for scheduling on a
    busy host and the SPU's registration round trip."""
    spus_first: float = Field(default=0.5, ge=0, json_schema_extra=SECONDS)
    """Longest a new leader holds back its controllers' first pass while the SPUs stored
    Online come over and are sent their first message (seconds; 0: not at all): at 100k
    partitions that pass is half a second of CPU, and run at once it delayed the SPUs'
    resyncs by as much. SPU health is not judged before ``spu_grace`` anyway."""
    warm_interval: float = Field(default=1.0, gt=0, json_schema_extra=SECONDS)
    """Time between two passes building the replica specs of changed partitions ahead
    of the next full sync (seconds, on every replica): often enough that a standby that
    wins sends its first full syncs from specs already built."""


class AssumedSpuSettings(BaseModel):
    """The SPUs' own settings (``SpuSettings``; some are ``ha-sc spu run`` flags) that
    this SC's timings rest on; set them here when the SPUs run with other values."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    sc_timeout: float = Field(default=_spu_default("sc_timeout"), gt=0, json_schema_extra=SECONDS)
    """The SPUs' ``--sc-timeout``: silence from the SC after which an SPU leaves it and
    looks for the leader again (seconds)."""
    connect_timeout: float = Field(
        default=_spu_default("connect_timeout"), gt=0, json_schema_extra=SECONDS
    )
    """The SPUs' connect_timeout: how long an SPU waits for a TCP connection to an
    SC replica (seconds)."""
    backoff_max: float = Field(default=_spu_default("backoff_max"), gt=0, json_schema_extra=SECONDS)
    """The SPUs' backoff_max: the longest an SPU waits between attempts to find the
    leader (seconds)."""
    status_interval: float = Field(
        default=_spu_default("status_interval"), gt=0, json_schema_extra=SECONDS
    )
    """The SPUs' ``--status-interval``: time between an SPU's status reports (seconds)."""
