"""``ha-sc spu run`` flags for what one peer may hold of the SPU's data ports (the
limit fields of ``DataPlaneSettings``; docs/security.md#limits)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ha_sc.cli.duration import Duration, help_suffix
from ha_sc.spu.dataplane_settings import DataPlaneSettings

F = TypeVar("F", bound=Callable[..., Any])

LIMIT_FIELDS = (
    "max_connections",
    "max_connections_per_peer",
    "frame_timeout",
    "max_in_flight",
    "private_max_in_flight",
    "max_fetch_bytes",
    "max_wait_ms",
)
"""The DataPlaneSettings fields set by these flags (``--max-connections`` ...)."""


def _default(name: str) -> Any:
    return DataPlaneSettings.model_fields[name].default


def _help(name: str) -> str:
    doc = DataPlaneSettings.model_fields[name].description or ""
    return " ".join(doc.split())


def data_port_limit_options(command: F) -> F:
    """Add one flag per limit field, each defaulting to the field's default."""
    for name in reversed(LIMIT_FIELDS):
        flag = "--" + name.replace("_", "-")
        if name == "frame_timeout":
            option = click.option(
                flag,
                name,
                type=Duration(),
                default=_default(name),
                show_default=True,
                help=_help(name) + " " + help_suffix(),
            )
        else:
            option = click.option(
                flag,
                name,
                type=click.IntRange(min=1),
                default=_default(name),
                show_default=True,
                help=_help(name),
            )
        command = option(command)
    return command
