"""Verbs that other installed packages add to ``ha-sc`` (the chaos harness's ``chaos``).

A package registers a click command under the entry-point group ``ha_sc.cli_plugins``;
the command is named by the entry point and loaded only when it is run or listed, so
the product never imports a plugin's package just to start."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

import click

GROUP = "ha_sc.cli_plugins"


def plugin_entry_points() -> dict[str, EntryPoint]:
    """Every registered plugin verb by name."""
    return {point.name: point for point in entry_points(group=GROUP)}


class PluginGroup(click.Group):
    """A click group that also offers the plugin verbs, each loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *plugin_entry_points()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        point = plugin_entry_points().get(cmd_name)
        if point is None:
            return None
        loaded = point.load()
        if not isinstance(loaded, click.Command):
            raise click.ClickException(
                f"plugin verb {cmd_name!r} ({point.value}) is not a click command"
            )
        return loaded
