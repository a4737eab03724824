"""``ha-sc``: run and operate a highly available Streaming Controller set."""

from __future__ import annotations

import logging

import click

from ha_sc.cli.sc import sc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="How much the process logs (to stderr).",
)
def cli(log_level: str) -> None:
    """Highly available Streaming Controller for a Fluvio-style streaming platform."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("pysyncobj").setLevel(logging.WARNING)


cli.add_command(sc)


def main() -> None:
    cli()
