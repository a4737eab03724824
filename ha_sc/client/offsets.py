"""Where a consumer starts: the beginning, the end, or an absolute offset (pure)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class From(enum.Enum):
    BEGINNING = "beginning"
    END = "end"
    ABSOLUTE = "absolute"


@dataclass(frozen=True, slots=True)
class Offset:
    """A starting point. ``Offset.beginning(n)``: ``n`` records after the first one
    kept; ``Offset.end(n)``: ``n`` records before the end (0: only new records);
    ``Offset.absolute(x)``: record ``x``."""

    origin: From
    value: int

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError(f"offset {self.value} is negative")

    @classmethod
    def beginning(cls, skip: int = 0) -> Offset:
        return cls(From.BEGINNING, skip)

    @classmethod
    def end(cls, back: int = 0) -> Offset:
        return cls(From.END, back)

    @classmethod
    def absolute(cls, offset: int) -> Offset:
        return cls(From.ABSOLUTE, offset)

    def __str__(self) -> str:
        if self.origin is From.ABSOLUTE:
            return f"offset {self.value}"
        return f"{self.origin.value}" + (
            f" {'+' if self.origin is From.BEGINNING else '-'}{self.value}" if self.value else ""
        )


def resolve(start: Offset, *, log_start: int, end: int) -> int:
    """The absolute offset to read from, given the partition's first kept offset and
    its end (the high watermark for committed reads). Relative starts are clamped into
    ``log_start .. end``; an absolute one is returned as it is."""
    if start.origin is From.BEGINNING:
        return min(log_start + start.value, max(end, log_start))
    if start.origin is From.END:
        return max(end - start.value, log_start)
    return start.value
