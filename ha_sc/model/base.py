"""Base classes shared by every model: frozen, strict specs, tolerant statuses."""

from pydantic import BaseModel, ConfigDict


class SpecModel(BaseModel):
    """A desired-state model; unknown fields are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class StatusModel(BaseModel):
    """An observed-state model written only by the SC.

    Unknown fields are dropped rather than refused, so a replica running older code
    can still read a status written by a newer one during a rolling upgrade.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")
