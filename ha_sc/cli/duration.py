"""Durations on the command line, as Fluvio writes them: ``100ms``, ``2s``, ``1m``,
``1h 30m``, ``7d``. A bare number keeps the unit the flag always had (seconds for
most, milliseconds for ``--linger``), so existing command lines mean what they did.
"""

from __future__ import annotations

import re

import click

_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zµ]*)")
SECONDS_PER_UNIT = {
    "ms": 0.001, "msec": 0.001, "msecs": 0.001, "millis": 0.001,
    "us": 1e-6, "µs": 1e-6,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip
EXAMPLES = "100ms, 2s, 1m, 1h 30m or 7d"


def parse_seconds(text: str, bare_unit: str = "s") -> float:
    """Seconds in ``text`` (``2s``, ``1h 30m``; a bare number is in ``bare_unit``);
    raises ValueError."""
    cleaned = text.strip().lower()
    parts: list[tuple[str, str]] = []
    position = 0
    while position < len(cleaned):
        match = _PART.match(cleaned, position)
        if match is None or match.end() == position:
            parts = []
            break
        parts.append((match.group(1), match.group(2)))
        position = match.end()
    bare = len(parts) == 1 and parts[0][1] == ""
    if not parts or (not bare and any(unit not in SECONDS_PER_UNIT for _, unit in parts)):
        raise ValueError(f"{text!r} is not a duration such as {EXAMPLES}")
    if bare:
        return float(parts[0][0]) * SECONDS_PER_UNIT[bare_unit]
    return sum(float(count) * SECONDS_PER_UNIT[unit] for count, unit in parts)


class Duration(click.ParamType[float]):
    """A duration flag: the value is a float in the flag's own ``unit`` (``s`` or
    ``ms``) whatever unit was written; ``minimum`` in that unit too."""

    name = "duration"

    def __init__(
        self, unit: str = "s", *, minimum: float | None = None, whole: bool = False
    ) -> None:
        if unit not in SECONDS_PER_UNIT:
            raise ValueError(f"unknown unit {unit!r}")
        self.unit = unit
        self.minimum = minimum
        self.whole = whole

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        return "DURATION"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            amount = float(value)  # a default, already in the flag's unit
        else:
            try:
                amount = parse_seconds(str(value), self.unit) / SECONDS_PER_UNIT[self.unit]
            except ValueError as exc:
                self.fail(str(exc), param, ctx)
        if self.minimum is not None and amount < self.minimum:
            self.fail(f"{value!r} is shorter than {self.minimum:g}{self.unit}", param, ctx)
        if self.whole:
            if amount != int(amount):
                self.fail(f"{value!r} is not a whole number of {self.unit}", param, ctx)
            return float(int(amount))
        return amount


def help_suffix(unit: str = "s") -> str:
    """What every duration flag's help ends with."""
    bare = "seconds" if unit == "s" else "milliseconds"
    return f"A duration: {EXAMPLES}; a bare number is {bare}."
