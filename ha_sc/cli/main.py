"""``ha-sc``: run and operate a highly available Streaming Controller set."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from ha_sc.cli.cert import cert
from ha_sc.cli.cluster import cluster
from ha_sc.cli.consume import consume
from ha_sc.cli.partition import partition
from ha_sc.cli.plugins import PluginGroup
from ha_sc.cli.produce import produce
from ha_sc.cli.sc import sc
from ha_sc.cli.spu_admin import spu_list, spu_register, spu_unregister
from ha_sc.cli.spu_run import spu_run
from ha_sc.cli.topic import topic
from ha_sc.cli.trace import trace
from ha_sc.client.discovery import ENV_TLS_CA, ENV_TOKEN_FILE


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="How much the process logs (to stderr).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"File of the public API bearer token to send (sets ${ENV_TOKEN_FILE}). "
    "[default: $HA_SC_TOKEN_FILE, else the cluster file's admin token, else none]",
)
@click.option(
    "--tls-ca",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"CA file the replicas' and SPUs' TLS certificates are checked with: they are "
    f"reached over TLS (sets ${ENV_TLS_CA}).  "
    "[default: $HA_SC_TLS_CA, else the cluster file's CA, else plain TCP]",
)
@click.version_option(package_name="ha-sc", prog_name="ha-sc")
def cli(log_level: str, token_file: Path | None, tls_ca: Path | None) -> None:
    """Highly available Streaming Controller for a Fluvio-style streaming platform."""
    if token_file is not None:
        os.environ[ENV_TOKEN_FILE] = str(token_file)  # read where a client is made
    if tls_ca is not None:
        os.environ[ENV_TLS_CA] = str(tls_ca)
    logging.basicConfig(
        level=getattr(logging, log_level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("pysyncobj").setLevel(logging.WARNING)


@click.group()
def spu() -> None:
    """SPUs: run one, or list, register and unregister them."""


spu.add_command(spu_run)
spu.add_command(spu_list)
spu.add_command(spu_register)
spu.add_command(spu_unregister)

cli.add_command(cert)
cli.add_command(cluster)
cli.add_command(sc)
cli.add_command(spu)
cli.add_command(topic)
cli.add_command(partition)
cli.add_command(produce)
cli.add_command(consume)
cli.add_command(trace)


def main() -> None:
    cli()
