"""``ha-sc sc``: run one SC replica."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import click
from pydantic import ValidationError

from election.etcd_access import EtcdAccessError
from ha_sc.api.access import read_api_tokens
from ha_sc.cli.data_dir import lock_data_dir
from ha_sc.cli.duration import Duration, help_suffix
from ha_sc.cli.sc_tuning import TuningFileError, render_toml, tuning_document, tuning_options
from ha_sc.cli.tls_options import tls_files, tls_options
from ha_sc.cli.trace_options import start_member_tracing, trace_file_option
from ha_sc.controllers.topics.validation import MAX_PARTITIONS_IN_CLUSTER, MAX_PARTITIONS_PER_TOPIC
from ha_sc.model.codec import format_validation_error
from ha_sc.sc.settings import Backend, ScSettings
from ha_sc.sc.spu_tokens import read_spu_tokens
from ha_sc.secret_file import SecretFileError, read_secret
from ha_sc.telemetry.tracing import SC_SERVICE, sc_resource

SWITCH_INTERVAL = 0.0005
"""Seconds a thread may hold the GIL while another waits for it (CPython's default: 0.005)."""


@click.group()
def sc() -> None:
    """Streaming Controller replicas."""


@sc.command("run")
@click.option("--id", "replica_id", default="sc-1", show_default=True, help="Replica name.")
@click.option(
    "--backend",
    type=click.Choice([b.value for b in Backend]),
    default=Backend.RAFT.value,
    show_default=True,
    help="Where cluster objects are stored: embedded Raft, etcd, or memory (one process).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Raft log and snapshots, locked against a second process (raft backend)  "
    "[default: ~/.ha-sc/<id>]",
)
@click.option(
    "--raft-address",
    default="127.0.0.1:9010",
    show_default=True,
    help="host:port of this replica's Raft node.",
)
@click.option(
    "--raft-peer",
    "raft_peers",
    multiple=True,
    help="host:port of another replica's Raft node (repeat for each); this replica's "
    "own --raft-address is skipped, so every replica can be given the same list.",
)
@click.option(
    "--raft-secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File (mode 0600) holding the Raft group's shared secret: Raft traffic is "
    "encrypted and authenticated with it; every replica needs the same one.",
)
@click.option(
    "--allow-unauthenticated-raft",
    is_flag=True,
    help="Start although --raft-address is not loopback and there is no "
    "--raft-secret-file: whoever reaches the Raft port can run code in this replica.",
)
@click.option(
    "--etcd-endpoint",
    "etcd_endpoints",
    multiple=True,
    help="etcd client endpoint host:port (repeat; default 127.0.0.1:2379).",
)
@click.option(
    "--etcd-root",
    default="/ha-sc/",
    show_default=True,
    help="Key prefix of this cluster's objects in etcd.",
)
@click.option(
    "--etcd-ca",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CA file (PEM) of the etcd members' certificates: etcd is reached over TLS.",
)
@click.option(
    "--etcd-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Client certificate (PEM) for an etcd run with --client-cert-auth.",
)
@click.option(
    "--etcd-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private key (PEM) of --etcd-cert.",
)
@click.option("--etcd-user", help="etcd user name, for an etcd with auth enabled.")
@click.option(
    "--etcd-password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File (mode 0600) holding --etcd-user's password.",
)
@click.option(
    "--etcd-max-txn-ops",
    type=click.IntRange(min=2),
    default=128,
    show_default=True,
    help="The etcd servers' --max-txn-ops: the largest transaction batch writes send.",
)
@click.option(
    "--public-address",
    default="127.0.0.1:9003",
    show_default=True,
    help="host:port of this replica's public API (advertised to the other replicas).",
)
@click.option(
    "--private-address",
    default="127.0.0.1:9004",
    show_default=True,
    help="host:port where SPUs connect (the leader serves it; standbys redirect).",
)
@click.option(
    "--spu-tokens",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File (mode 0600) of SPU registration tokens, a line '<spu id> <token>' per SPU; "
    "an SPU without the right token is refused.  [default: SPUs register unauthenticated]",
)
@click.option(
    "--api-tokens",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File (mode 0600) of public API bearer tokens, a line '<read|admin> <token>' "
    "each: reads need either, writes admin; /healthz, /readyz, /metrics stay open.  "
    "[default: the API is open]",
)
@tls_options("the public API and the private (SPU) port")
@click.option(
    "--status-interval",
    type=Duration(),
    default=5.0,
    show_default=True,
    help="Time between status lines. " + help_suffix(),
)
@click.option(
    "--lease-ttl",
    type=Duration(),
    help="How long the SC lease outlives its last renewal. "
    + help_suffix()
    + "  [default: 0.8 on raft, 2 on etcd]",
)
@click.option(
    "--renew-deadline",
    type=Duration(),
    help="Time without a successful renewal after which the leader stops acting "
    "(less than --lease-ttl)  [default: 0.55 on raft, 1.5 on etcd]",
)
@click.option(
    "--renew-interval",
    type=Duration(),
    help="Time between the leader's renewals (less than --renew-deadline)  "
    "[default: 0.1 on raft, 0.25 on etcd]",
)
@click.option(
    "--max-partitions-per-topic",
    type=click.IntRange(min=1),
    default=MAX_PARTITIONS_PER_TOPIC,
    show_default=True,
    help="Most partitions one topic may have (a create asking more is refused).",
)
@click.option(
    "--max-partitions-in-cluster",
    type=click.IntRange(min=1),
    default=MAX_PARTITIONS_IN_CLUSTER,
    show_default=True,
    help="Most partitions all topics may have together (a create going over is refused).",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file of settings-tree values (keys: the field paths, [spu_link] hold = 0.75); "
    "the flags below override it, an unknown key is an error.",
)
@click.option(
    "--print-settings",
    is_flag=True,
    help="Print the effective settings tree as TOML (a config file) and exit.",
)
@trace_file_option
@tuning_options
def run(
    replica_id: str,
    backend: str,
    data_dir: Path | None,
    raft_address: str,
    raft_peers: tuple[str, ...],
    raft_secret_file: Path | None,
    allow_unauthenticated_raft: bool,
    etcd_endpoints: tuple[str, ...],
    etcd_root: str,
    etcd_ca: Path | None,
    etcd_cert: Path | None,
    etcd_key: Path | None,
    etcd_user: str | None,
    etcd_password_file: Path | None,
    etcd_max_txn_ops: int,
    public_address: str,
    private_address: str,
    spu_tokens: Path | None,
    api_tokens: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
    tls_client_auth: bool,
    status_interval: float,
    lease_ttl: float | None,
    renew_deadline: float | None,
    renew_interval: float | None,
    max_partitions_per_topic: int,
    max_partitions_in_cluster: int,
    config: Path | None,
    print_settings: bool,
    trace_file: Path | None,
    tuning_flags: dict[str, dict[str, object]],
) -> None:
    """Run one SC replica until SIGTERM or Ctrl-C, logging its status.

    Every replica of a set must run with the same lease timings. The replica's timings
    and sizes (the settings tree: --config and the --<group>-<field> flags) are logged
    at start, one line per group."""
    data_dir = (data_dir or Path("~/.ha-sc") / replica_id).expanduser()
    fields: dict[str, object] = {
        "replica_id": replica_id,
        "backend": backend,
        "data_dir": data_dir,
        "raft_address": raft_address,
        "raft_peers": tuple(p for p in raft_peers if p != raft_address),
        "raft_secret_file": raft_secret_file,
        "allow_unauthenticated_raft": allow_unauthenticated_raft,
        "status_interval": status_interval,
        "etcd_root": etcd_root,
        "etcd_ca": etcd_ca,
        "etcd_cert": etcd_cert,
        "etcd_key": etcd_key,
        "etcd_user": etcd_user,
        "etcd_password_file": etcd_password_file,
        "etcd_max_txn_ops": etcd_max_txn_ops,
        "public_address": public_address,
        "private_address": private_address,
        "spu_tokens": spu_tokens,
        "api_tokens": api_tokens,
        "tls": tls_files(tls_cert, tls_key, tls_ca, tls_client_auth),
        "lease_ttl": lease_ttl,
        "renew_deadline": renew_deadline,
        "renew_interval": renew_interval,
        "max_partitions_per_topic": max_partitions_per_topic,
        "max_partitions_in_cluster": max_partitions_in_cluster,
    }
    if etcd_endpoints:
        fields["etcd_endpoints"] = etcd_endpoints
    try:
        fields["tuning"] = tuning_document(config, tuning_flags)
        settings = ScSettings.model_validate(fields)
    except TuningFileError as invalid:
        raise click.BadParameter(str(invalid), param_hint="'--config'") from None
    except ValidationError as invalid:
        raise click.BadParameter(format_validation_error(invalid)) from None
    secret_files: tuple[tuple[str, Path | None, Callable[[Path], object]], ...] = (
        ("--raft-secret-file", raft_secret_file, read_secret),
        ("--spu-tokens", spu_tokens, read_spu_tokens),
        ("--api-tokens", api_tokens, read_api_tokens),
    )
    for flag, path, read in secret_files:  # refused here, before anything is opened
        try:
            if path is not None:
                read(path)
        except SecretFileError as unusable:
            raise click.BadParameter(str(unusable), param_hint=f"'{flag}'") from None
    if settings.backend == Backend.ETCD:
        try:
            settings.etcd_access().load()
        except EtcdAccessError as unusable:
            raise click.BadParameter(str(unusable)) from None
    if print_settings:
        click.echo(render_toml(settings.tuning), nl=False)
        return
    # The Raft and election threads do many short socket operations, each giving up the
    # GIL; with the default 5 ms switch interval every one of them can wait 5 ms behind
    # a busy main thread, and under load Raft heartbeats arrive late enough to depose
    # the Raft leader. A shorter interval lets them back in sooner.
    if settings.backend == Backend.RAFT:
        lock_data_dir(data_dir)  # the Raft journal's one writer, until the process exits
    sys.setswitchinterval(SWITCH_INTERVAL)
    start_member_tracing(SC_SERVICE, sc_resource(replica_id, backend), trace_file)
    from ha_sc.sc.replica import ScReplica  # the whole SC: loaded only to run one

    sys.exit(asyncio.run(ScReplica(settings).run()))
