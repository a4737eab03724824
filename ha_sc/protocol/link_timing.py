"""Timing rules the SC and an SPU must both keep on their control link.

Each side checks the rules with the values it knows: the SC with its own timings and
the SPU timings it assumes (``ha_sc.sc.tuning``), an SPU with its own timings and the
SC's defaults (``ha_sc.spu.settings``).
"""

from __future__ import annotations

DEFAULT_HEALTH_TIMEOUT = 1.2
"""Seconds of silence after which the SC takes an SPU for offline, unless set otherwise."""

REPORTS_PER_HEALTH_TIMEOUT = 3
"""Status reports an SPU sends within one health timeout: two may be late or lost
(a busy SPU, a GC pause) before the SC takes it for offline."""


def report_cadence_problem(*, status_interval: float, health_timeout: float) -> str | None:
    """Why SPUs reporting every ``status_interval`` s would be taken for offline by an SC
    with ``health_timeout``, or None when the cadence is fine."""
    # the margin keeps 0.4 s within 1.2 s / 3, which binary floats put just below 0.4
    if status_interval * REPORTS_PER_HEALTH_TIMEOUT <= health_timeout * (1 + 1e-9):
        return None
    return (
        f"status_interval {status_interval:g} s is too long for the SC's health_timeout "
        f"{health_timeout:g} s: an SPU must report at least {REPORTS_PER_HEALTH_TIMEOUT} "
        f"times per health timeout (every {health_timeout / REPORTS_PER_HEALTH_TIMEOUT:g} s "
        "or less), or one late report takes it offline"
    )
