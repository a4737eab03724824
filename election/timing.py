"""Lease timings, checked the way client-go checks its leader-election config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ElectionTiming(BaseModel):
    """How long a lease lasts and how its holder keeps it. All in seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lease_ttl: float = Field(default=0.6, gt=0)
    """How long after its last renewal a lease may be taken by another candidate."""
    renew_deadline: float = Field(default=0.4, gt=0)
    """The holder stops acting when no renewal succeeded within this long of being sent."""
    renew_interval: float = Field(default=0.1, gt=0)
    """How often the holder renews."""
    retry_period: float = Field(default=0.1, gt=0)
    """How often a waiting candidate re-checks when it has no change to wake it."""

    @model_validator(mode="after")
    def _ordered(self) -> ElectionTiming:
        if not self.lease_ttl > self.renew_deadline:
            raise ValueError(
                f"lease_ttl ({self.lease_ttl}s) must be greater than renew_deadline "
                f"({self.renew_deadline}s), so the holder stops before another can take over"
            )
        if not self.renew_deadline > self.renew_interval:
            raise ValueError(
                f"renew_deadline ({self.renew_deadline}s) must be greater than renew_interval "
                f"({self.renew_interval}s), so a late renewal can be retried before the deadline"
            )
        return self
