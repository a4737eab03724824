"""The SC's settings tree: every timing and size of an SC replica's parts, checked together.

``ScTuning`` groups them by the part they govern (the controller loop, its pacing and
write window, the SPU link, the SPU timings the SC relies on, a new leader's
catch-up); it is reachable as ``ScSettings.tuning`` and settable by ``ha-sc sc run``
flags (``--<group>-<field>``) or a TOML file whose keys are the field paths
(``[spu_link] hold = 1.0``). Timings that only make sense together are checked here,
with the SPU's side included where they meet (and against the lease in
``ScSettings``). Protocol facts (frame sizes, poll steps) stay constants beside their
code.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo

from ha_sc.controllers.settings import (
    ControllerSettings,
    PacingSettings,
    WriteWindowSettings,
)
from ha_sc.protocol.link_timing import report_cadence_problem
from ha_sc.sc.catch_up import CatchUpSettings
from ha_sc.sc.listener_limits import ListenerLimits
from ha_sc.sc.spu_grace import FollowTiming, FollowTimingError, check_follow_timing, spu_grace
from ha_sc.sc.spu_link_settings import AssumedSpuSettings, SpuLinkSettings


class ScTuning(BaseModel):
    """Every tunable of an SC replica's parts, by the part it governs."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    controller: ControllerSettings = Field(default_factory=ControllerSettings)
    """When the leader's controller loop runs a pass."""
    pacing: PacingSettings = Field(default_factory=PacingSettings)
    """How passes are spaced by what planning costs."""
    write_window: WriteWindowSettings = Field(default_factory=WriteWindowSettings)
    """How many controller writes may be outstanding."""
    spu_link: SpuLinkSettings = Field(default_factory=SpuLinkSettings)
    """How this replica talks to the SPUs."""
    spu: AssumedSpuSettings = Field(default_factory=AssumedSpuSettings)
    """The SPUs' own timings this replica's timings rest on."""
    catch_up: CatchUpSettings = Field(default_factory=CatchUpSettings)
    """How a new leader catches its cache up before acting."""
    listeners: ListenerLimits = Field(default_factory=ListenerLimits)
    """What one client or SPU may make this replica hold."""

    def follow_timing(self) -> FollowTiming:
        """The timings that decide how long SPUs take to come over to a new leader."""
        return FollowTiming(
            sc_timeout=self.spu.sc_timeout,
            connect_timeout=self.spu.connect_timeout,
            backoff_max=self.spu.backoff_max,
            hold=self.spu_link.hold,
            keepalive_interval=self.spu_link.keepalive_interval,
            margin=self.spu_link.grace_margin,
        )

    @property
    def spu_grace(self) -> float:
        """Seconds a new leader leaves SPU health as stored (derived, ``spu_grace``)."""
        return spu_grace(self.follow_timing())

    def summary(self) -> list[str]:
        """One line per group, ``group name=value ...`` (durations with ``s``), and the
        derived grace: what a replica logs at start."""
        lines = []
        for group, _ in _groups():
            values = " ".join(
                f"{name}={_shown(value, info)}" for name, info, value in _leaves(self, group)
            )
            lines.append(f"{group} {values}")
        lines.append(f"derived spu_grace={self.spu_grace:g}s")
        return lines

    @model_validator(mode="after")
    def _spus_can_follow(self) -> ScTuning:
        try:
            check_follow_timing(self.follow_timing())
        except FollowTimingError as broken:
            raise ValueError(str(broken)) from None
        return self

    @model_validator(mode="after")
    def _spus_report_often_enough(self) -> ScTuning:
        problem = report_cadence_problem(
            status_interval=self.spu.status_interval,
            health_timeout=self.spu_link.health_timeout,
        )
        if problem is not None:
            raise ValueError(problem)
        return self


def _groups() -> Iterator[tuple[str, type[BaseModel]]]:
    for group, info in ScTuning.model_fields.items():
        model = info.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        yield group, model


def _leaves(tuning: ScTuning, group: str) -> Iterator[tuple[str, FieldInfo, object]]:
    settings = getattr(tuning, group)
    for name, info in type(settings).model_fields.items():
        yield name, info, getattr(settings, name)


def leaf_fields() -> list[tuple[str, str, FieldInfo]]:
    """Every tunable as ``(group, name, field)``, in the tree's order."""
    return [
        (group, name, info)
        for group, model in _groups()
        for name, info in model.model_fields.items()
    ]


def is_duration(info: FieldInfo) -> bool:
    """Whether the field is a duration in seconds."""
    extra = info.json_schema_extra
    return isinstance(extra, dict) and extra.get("unit") == "s"


def _shown(value: object, info: FieldInfo) -> str:
    if isinstance(value, float):
        return f"{value:g}s" if is_duration(info) else f"{value:g}"
    return str(value)
