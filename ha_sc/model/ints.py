"""Bounded integer types shared by the models (Fluvio uses i32 SPU ids)."""

from typing import Annotated

from pydantic import Field

I32_MAX = 2**31 - 1

SpuId = Annotated[int, Field(ge=0, le=I32_MAX)]
"""An SPU id: a non-negative i32."""

PartitionId = Annotated[int, Field(ge=0, le=I32_MAX)]
"""A partition index within a topic."""
