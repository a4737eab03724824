"""How long a new leader waits for the SPUs before judging them, and the timings it rests on.

An SPU attached to a leader that froze or was cut off leaves it only after
``sc_timeout`` of silence; it then dials a replica (up to ``connect_timeout``),
may be held at a standby that has not yet seen the new leader (up to ``hold``)
and waits up to ``backoff_max`` between attempts. Until that much time has passed
since the win, an SPU that is not yet connected may still be on its way: the
leader leaves SPU health as stored and does not refuse a create for want of SPUs
(``spu_grace``), unless every SPU stored Online has already connected to it
(``grace_over``). The timings only make sense together (``check_follow_timing``).
"""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel, ConfigDict, Field

from ha_sc.sc.spu_link_settings import AssumedSpuSettings, SpuLinkSettings

_SPU = AssumedSpuSettings()
_LINK = SpuLinkSettings()


class FollowTiming(BaseModel):
    """The SPU and SC timings that decide how long SPUs take to come over to a new leader
    (defaults: the SPU's and the SC's, ``spu`` and ``spu_link`` of the settings tree)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sc_timeout: float = Field(default=_SPU.sc_timeout, gt=0)
    connect_timeout: float = Field(default=_SPU.connect_timeout, gt=0)
    backoff_max: float = Field(default=_SPU.backoff_max, gt=0)
    hold: float = Field(default=_LINK.hold, ge=0)
    keepalive_interval: float = Field(default=_LINK.keepalive_interval, gt=0)
    margin: float = Field(default=_LINK.grace_margin, ge=0)


class FollowTimingError(ValueError):
    """The SPU and SC timings break a constraint that SPUs following a leader rely on."""


def check_follow_timing(timing: FollowTiming) -> None:
    """Raise ``FollowTimingError`` naming the first broken constraint."""
    if timing.hold >= timing.sc_timeout:
        raise FollowTimingError(
            f"hold < sc_timeout is broken: the hold {timing.hold:g} s at a standby must stay "
            f"below the SPU's sc_timeout {timing.sc_timeout:g} s (its wait for an answer), "
            "or a held SPU gives up before it is answered"
        )
    if timing.keepalive_interval >= timing.sc_timeout:
        raise FollowTimingError(
            f"keepalive_interval < sc_timeout is broken: the keepalive interval "
            f"{timing.keepalive_interval:g} s must stay below the SPU's sc_timeout "
            f"{timing.sc_timeout:g} s, or SPUs leave a live leader that has nothing to say"
        )


def spu_grace(timing: FollowTiming) -> float:
    """Seconds from a win until SPUs online under the previous leader have had time to come
    over: silence, one connection, one hold at a standby, one backoff, plus the margin."""
    check_follow_timing(timing)
    return (
        timing.sc_timeout
        + timing.connect_timeout
        + timing.hold
        + timing.backoff_max
        + timing.margin
    )


DEFAULT_SPU_GRACE = spu_grace(FollowTiming())
"""The grace for SPUs and SCs run with their default timings."""


def grace_over(
    *, elapsed: float, grace: float, were_online: Collection[int], connected: Collection[int]
) -> bool:
    """Whether a new leader may judge SPU health ``elapsed`` s after its win: once the
    grace has run out, or sooner once every SPU stored Online (under the previous
    leader) has connected to it, as they do at once on a leader notice."""
    return elapsed >= grace or set(were_online) <= set(connected)
