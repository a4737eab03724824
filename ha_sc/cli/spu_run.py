"""``ha-sc spu run``: run one SPU (its control link and its data plane).

Also runnable alone as ``python -m ha_sc.spu`` (which calls ``main``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from ha_sc.cli.data_dir import lock_data_dir
from ha_sc.cli.duration import Duration, help_suffix
from ha_sc.cli.output import split_addresses
from ha_sc.cli.spu_limits import data_port_limit_options
from ha_sc.cli.tls_options import tls_files, tls_options
from ha_sc.cli.trace_options import start_member_tracing, trace_file_option
from ha_sc.model.codec import format_validation_error
from ha_sc.secret_file import SecretFileError, read_secret
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from ha_sc.spu.node import SpuNode
from ha_sc.spu.settings import SpuSettings
from ha_sc.spu.storage import FsyncPolicy
from ha_sc.telemetry.tracing import SPU_SERVICE, spu_resource
from ha_sc.telemetry.tracing_produce import DEFAULT_PRODUCE_RATIO, PRODUCE

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


@click.command("run")
@click.option("--id", "spu_id", type=int, required=True, help="This SPU's id.")
@click.option(
    "--sc-private",
    "sc_addresses",
    multiple=True,
    callback=split_addresses,
    metavar="HOST:PORT",
    help="Private (SPU) address of an SC replica: repeat, or a comma list, for every replica.",
)
@click.option(
    "--sc",
    "old_sc_addresses",
    multiple=True,
    hidden=True,
    callback=split_addresses,
    help="Deprecated name of --sc-private.",
)
@click.option(
    "--public",
    "public_address",
    default="127.0.0.1:9005",
    show_default=True,
    help="host:port where producers and consumers reach this SPU.",
)
@click.option(
    "--private",
    "private_address",
    default="127.0.0.1:9006",
    show_default=True,
    help="host:port where other SPUs reach this SPU.",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="State file and partition logs; locked against a second process.  "
    "[default: ~/.ha-sc/spu-<id>]",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File (mode 0600) of the token proving --id to an SC started with --spu-tokens.",
)
@tls_options("both data ports (and shown when dialling the SC and leader SPUs)")
@click.option(
    "--status-interval",
    type=Duration(),
    default=0.3,
    show_default=True,
    help="Time between status reports to the SC (at most 400ms). " + help_suffix(),
)
@click.option(
    "--sc-timeout",
    type=Duration(),
    default=2.0,
    show_default=True,
    help="Silence from the SC before looking for the leader again (a notice of a newer "
    "leader from any SC replica moves the SPU at once). " + help_suffix(),
)
@click.option(
    "--fsync",
    type=click.Choice([p.value for p in FsyncPolicy]),
    default=FsyncPolicy.ALWAYS.value,
    show_default=True,
    help="When appended records are forced to the disk (see docs/storage.md).",
)
@click.option(
    "--min-insync",
    type=int,
    default=1,
    show_default=True,
    help="Replicas (leader included) that must hold a record before acks=all answers.",
)
@click.option(
    "--lag-time",
    type=Duration(),
    default=10.0,
    show_default=True,
    help="How long a follower may lag before it leaves the in-sync set. " + help_suffix(),
)
@click.option(
    "--retention-interval",
    type=Duration(),
    default=10.0,
    show_default=True,
    help="Time between two deletions of the segments the topics' retention lets go. "
    + help_suffix(),
)
@click.option(
    "--metrics-address",
    default=None,
    metavar="HOST:PORT",
    help="Serve Prometheus metrics on http://HOST:PORT/metrics (docs/metrics.md). [default: off]",
)
@data_port_limit_options
@trace_file_option
@click.option(
    "--trace-produce-ratio",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULT_PRODUCE_RATIO,
    show_default=True,
    help="Share of produce requests traced, while tracing is on (--trace-file, OTEL_*).",
)
def spu_run(
    spu_id: int,
    sc_addresses: tuple[str, ...],
    old_sc_addresses: tuple[str, ...],
    public_address: str,
    private_address: str,
    data_dir: Path | None,
    token_file: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
    tls_client_auth: bool,
    status_interval: float,
    sc_timeout: float,
    fsync: str,
    min_insync: int,
    lag_time: float,
    retention_interval: float,
    metrics_address: str | None,
    trace_file: Path | None,
    trace_produce_ratio: float,
    **port_limits: float,
) -> None:
    """Run one SPU until SIGTERM or Ctrl-C: follow the SC leader, report status, serve
    produce and fetch, replicate."""
    if old_sc_addresses:
        click.echo("warning: `spu run --sc` is deprecated; use --sc-private", err=True)
        sc_addresses += old_sc_addresses
    if not sc_addresses:
        raise click.UsageError("Missing option '--sc-private' (an SC replica's private address).")
    fields: dict[str, object] = {
        "spu_id": spu_id,
        "sc_addresses": sc_addresses,
        "public_address": public_address,
        "private_address": private_address,
        "data_dir": (data_dir or Path(f"~/.ha-sc/spu-{spu_id}")).expanduser(),
        "token_file": token_file,
        "tls": tls_files(tls_cert, tls_key, tls_ca, tls_client_auth),
        "status_interval": status_interval,
        "sc_timeout": sc_timeout,
        "metrics_address": metrics_address,
    }
    try:
        fields["dataplane"] = DataPlaneSettings(
            fsync=FsyncPolicy(fsync),
            min_insync=min_insync,
            lag_time=lag_time,
            retention_interval=retention_interval,
            **port_limits,
        )
        settings = SpuSettings.model_validate(fields)
    except ValidationError as invalid:
        raise click.BadParameter(format_validation_error(invalid)) from None
    if token_file is not None:
        try:
            read_secret(token_file)
        except SecretFileError as unusable:
            raise click.BadParameter(str(unusable), param_hint="'--token-file'") from None
    lock_data_dir(settings.data_dir)  # held until the process exits
    start_member_tracing(SPU_SERVICE, spu_resource(spu_id), trace_file)
    PRODUCE.configure(trace_produce_ratio)
    sys.exit(asyncio.run(SpuNode(settings).run()))


def main() -> None:
    """Run ``spu run`` as its own program, logging at info to stderr."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    spu_run(prog_name="ha-sc spu run")
