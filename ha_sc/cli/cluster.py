"""``ha-sc cluster up|status|down``: a local SC replica set with SPUs."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from ha_sc.cli.duration import Duration, help_suffix
from ha_sc.cli.sc_tuning import TuningFileError, tuning_document, tuning_options
from ha_sc.cluster.bring_up import NotReady, bring_up
from ha_sc.cluster.layout import (
    ClusterLayout,
    LeaseTimings,
    ScOptions,
    cluster_dir,
    cluster_locked,
)
from ha_sc.cluster.membership import MembershipFailed, remove
from ha_sc.cluster.port_check import PortsTaken
from ha_sc.cluster.port_registry import NoBlock
from ha_sc.cluster.ports import BLOCK_SIZE, DEFAULT_BASE, SLOTS, BadBlock
from ha_sc.cluster.probe import replica_reports, spu_statuses
from ha_sc.cluster.processes import is_running, stop

DIR_HELP = "Where the cluster keeps its file, data and logs (default $HA_SC_DIR or ~/.ha-sc)."


@click.group()
def cluster() -> None:
    """A local cluster: N SC replicas and M SPUs as background processes."""


@cluster.command("up")
@click.option(
    "--replicas",
    type=click.IntRange(1, 9),
    help="SC replicas  [default: as recorded, else 3]",
)
@click.option("--spus", type=click.IntRange(0, SLOTS), help="SPUs  [default: as recorded, else 3]")
@click.option(
    "--backend",
    type=click.Choice(["raft", "etcd"]),
    help="Where the SCs keep cluster objects  [default: as recorded, else raft]",
)
@click.option(
    "--etcd-endpoint",
    "etcd_endpoints",
    multiple=True,
    help="Use this etcd (repeat); without it, --backend etcd starts a local etcd.",
)
@click.option("--dir", "directory", type=click.Path(path_type=Path), help=DIR_HELP)
@click.option(
    "--base-port",
    type=click.IntRange(1024, 65535),
    help=f"First port of the cluster's block of {BLOCK_SIZE}, when it is made  "
    f"[default: the first free block from {DEFAULT_BASE}]",
)
@click.option(
    "--timeout",
    type=Duration(),
    default=60.0,
    show_default=True,
    help="How long to wait for a leader and every SPU online. " + help_suffix(),
)
@click.option(
    "--lease-ttl",
    type=Duration(),
    help="The SC lease's TTL, for every replica  [default: 0.8s on raft, 2s on etcd]",
)
@click.option(
    "--renew-deadline",
    type=Duration(),
    help="Time without a renewal before a leader stops acting  "
    "[default: 0.55s on raft, 1.5s on etcd]",
)
@click.option(
    "--renew-interval",
    type=Duration(),
    help="Time between a leader's renewals  [default: 0.1s on raft, 0.25s on etcd]",
)
@click.option(
    "--max-partitions-per-topic",
    type=click.IntRange(min=1),
    help="Passed to every SC replica (sc run's flag)  [default: as recorded, else sc run's]",
)
@click.option(
    "--max-partitions-in-cluster",
    type=click.IntRange(min=1),
    help="Passed to every SC replica (sc run's flag)  [default: as recorded, else sc run's]",
)
@click.option(
    "--sc-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="SC settings file (sc run --config) for every replica; the settings-tree flags "
    "below override it for every replica  [default: as recorded]",
)
@click.option(
    "--trace-file",
    "trace_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Turn tracing on for every member started: each writes DIR/<member>.jsonl "
    "(read them with `ha-sc trace show DIR`)  [default: as recorded, else off]",
)
@click.option(
    "--api-auth",
    is_flag=True,
    help="The public API needs a bearer token: an admin token is made in "
    "DIR/secrets/admin.token, which the CLI sends  [default: as recorded, else open]",
)
@click.option(
    "--tls",
    is_flag=True,
    help="TLS on every SC and SPU port: a CA and a certificate per member are made in "
    "DIR/secrets/tls, the CA recorded for the CLI  [default: as recorded, else plain TCP]",
)
@tuning_options
def up(
    replicas: int | None,
    spus: int | None,
    backend: str | None,
    etcd_endpoints: tuple[str, ...],
    directory: Path | None,
    base_port: int | None,
    timeout: float,
    lease_ttl: float | None,
    renew_deadline: float | None,
    renew_interval: float | None,
    max_partitions_per_topic: int | None,
    max_partitions_in_cluster: int | None,
    sc_config: Path | None,
    trace_dir: Path | None,
    api_auth: bool,
    tls: bool,
    tuning_flags: dict[str, dict[str, float | int]],
) -> None:
    """Start every member that is not running, then wait for a leader and all SPUs online.

    Run it again on the same DIR to bring back a member that is down; running members
    are left alone. With more --replicas than the cluster has, the new replicas join the
    running set one at a time (on Raft, each is added to the Raft group); to shrink the
    set use `cluster remove`. Counts, ports and lease timings are fixed when the
    cluster is made (every replica runs with the same timings); a re-run changes only
    what its flags say. The SC settings (--sc-config, settings-tree flags, partition
    caps) are recorded too: a re-run keeps them, and what it sets replaces them for
    the replicas it starts.

    \b
    Ports: a block of 500 per cluster (default from 9003, as Fluvio), outside the
    kernel's ephemeral range, recorded in cluster.json and kept across restarts:
      SC replica sc-N   public base+10(N-1), private +1, Raft +4
      SPU 5001+K        public base+10K+2, private +3, metrics +7
      local etcd        client base+5, peer base+6
    A second cluster (another --dir) takes the next free block; deleting a cluster's
    DIR gives its block back. Every port is checked free before anything starts.
    """
    where = cluster_dir(directory)
    timings = LeaseTimings(
        lease_ttl=lease_ttl, renew_deadline=renew_deadline, renew_interval=renew_interval
    )
    sc_options = ScOptions(
        config=str(sc_config.resolve()) if sc_config is not None else None,
        tuning=tuning_flags,
        max_partitions_per_topic=max_partitions_per_topic,
        max_partitions_in_cluster=max_partitions_in_cluster,
    )
    _check_sc_options(where, backend, sc_options)
    try:
        with cluster_locked(where, _waiting(where)):
            layout = asyncio.run(
                bring_up(
                    where,
                    replicas=replicas,
                    spus=spus,
                    backend=backend,
                    etcd_endpoints=list(etcd_endpoints),
                    timeout=timeout,
                    progress=lambda line: click.echo(f"  {line}"),
                    timings=timings if timings != LeaseTimings() else None,
                    base_port=base_port,
                    sc_options=sc_options,
                    trace_dir=trace_dir,
                    api_auth=api_auth,
                    tls=tls,
                )
            )
    except (PortsTaken, NoBlock, BadBlock) as refused:
        raise click.ClickException(str(refused)) from None
    except (NotReady, MembershipFailed, ValueError, OSError) as failed:
        raise click.ClickException(f"{failed} (logs: {where / 'logs'})") from None
    click.echo(
        f"cluster up: {len(layout.replicas)} SC replicas ({layout.backend}), "
        f"{len(layout.spus)} SPUs; file {where / 'cluster.json'}"
    )
    click.echo(f"  public API endpoints: {','.join(layout.public_endpoints())}")


def _check_sc_options(where: Path, backend: str | None, options: ScOptions) -> None:
    """Refuse SC settings the replicas would refuse, before anything starts."""
    from ha_sc.model.codec import format_validation_error
    from ha_sc.sc.settings import ScSettings

    recorded = ClusterLayout.load(where)
    if recorded is not None:
        options = recorded.sc_options.updated(options)
        backend = backend or recorded.backend
    caps = {
        cap: value
        for cap in ("max_partitions_per_topic", "max_partitions_in_cluster")
        if (value := getattr(options, cap)) is not None
    }
    try:
        config = Path(options.config) if options.config is not None else None
        tuning = tuning_document(config, options.tuning)
        ScSettings.model_validate({"backend": backend or "raft", "tuning": tuning, **caps})
    except TuningFileError as invalid:
        raise click.BadParameter(str(invalid), param_hint="'--sc-config'") from None
    except ValidationError as invalid:
        raise click.ClickException(
            f"the SC replicas would refuse these settings: {format_validation_error(invalid)}"
        ) from None


@cluster.command("status")
@click.option("-O", "--output", type=click.Choice(["table", "json"]), default="table")
@click.option("--dir", "directory", type=click.Path(path_type=Path), help=DIR_HELP)
def status(output: str, directory: Path | None) -> None:
    """Every SC replica's role, epoch, revision and lag; every SPU's status and PID.

    Exits 1 when no replica leads (none answering included), as a health check wants."""
    layout = _load(directory)
    reports = asyncio.run(replica_reports(layout))
    leaders = [r for r in reports if r.role == "leader"]
    leader = leaders[0] if leaders else None
    source = (
        leader.public if leader else next((r.public for r in reports if r.role != "down"), None)
    )
    spu_state = asyncio.run(spu_statuses(layout, source)) if source else {}
    top = leader.revision if leader and leader.revision is not None else None
    replicas = [
        {
            "id": r.id,
            "role": r.role,
            "epoch": r.epoch,
            "revision": r.revision,
            "lag": None if top is None or r.revision is None else max(0, top - r.revision),
            "pid": r.pid,
            "public": r.public,
            "private": r.private,
        }
        for r in reports
    ]
    spus = [
        {
            "id": s.id,
            "status": spu_state.get(s.id, "Unknown") if is_running(s.pid) else "down",
            "pid": s.pid if is_running(s.pid) else None,
            "metrics": s.metrics or None,
        }
        for s in layout.spus
    ]
    doc = {
        "leader": None
        if leader is None
        else {k: v for k, v in asdict(leader).items() if k != "leader"},
        "replicas": replicas,
        "spus": spus,
    }
    if output == "json":
        click.echo(json.dumps(doc, indent=2))
    else:
        _print_status(replicas, spus)
    if leader is None:
        answering = any(r.role != "down" for r in reports)
        click.echo("no SC replica leads" if answering else "no SC replica answers", err=True)
        sys.exit(1)


def _print_status(replicas: list[dict[str, Any]], spus: list[dict[str, Any]]) -> None:
    click.echo(
        f"{'REPLICA':<8} {'ROLE':<8} {'EPOCH':>6} {'REVISION':>9} {'LAG':>5} "
        f"{'PID':>8}  PUBLIC / PRIVATE"
    )
    for r in replicas:
        click.echo(
            f"{r['id']:<8} {r['role']:<8} {_cell(r['epoch']):>6} "
            f"{_cell(r['revision']):>9} {_cell(r['lag']):>5} {_cell(r['pid']):>8}  "
            f"{r['public']} / {r['private']}"
        )
    click.echo(f"\n{'SPU':<6} {'STATUS':<8} {'PID':>8}  METRICS")
    for s in spus:
        click.echo(f"{s['id']:<6} {s['status']:<8} {_cell(s['pid']):>8}  {_cell(s['metrics'])}")


@cluster.command("remove")
@click.argument("replica")
@click.option("--dir", "directory", type=click.Path(path_type=Path), help=DIR_HELP)
def remove_replica(replica: str, directory: Path | None) -> None:
    """Take REPLICA (e.g. sc-3) out of the running set, stop it and delete its data.

    It first steps down (a standby takes the lease; Raft leadership moves on), then
    another replica removes it from the Raft group; the rest keep serving throughout.
    """
    where = cluster_dir(directory)
    try:
        with cluster_locked(where, _waiting(where)):
            layout = _load(directory)
            gone = asyncio.run(remove(layout, replica, where))
    except MembershipFailed as failed:
        raise click.ClickException(str(failed)) from None
    click.echo(
        f"replica {gone.id} removed; {len(layout.replicas)} SC replicas remain: "
        f"{', '.join(r.id for r in layout.replicas)}"
    )


@cluster.command("down")
@click.option("--dir", "directory", type=click.Path(path_type=Path), help=DIR_HELP)
def down(directory: Path | None) -> None:
    """Stop every member by its PID (SPUs, then SC replicas, then a local etcd).

    Data stays in DIR: `cluster up` brings the same cluster back.
    """
    where = cluster_dir(directory)
    with cluster_locked(where, _waiting(where)):
        layout = _load(directory)
        stopped = 0
        for spu in layout.spus:
            stopped += stop(spu.pid)
            spu.pid = None
        for replica in layout.replicas:
            stopped += stop(replica.pid)
            replica.pid = None
        if layout.etcd is not None and layout.etcd.managed:
            stopped += stop(layout.etcd.pid, "etcd")
            layout.etcd.pid = None
        layout.save(where)
    click.echo(f"cluster down: {stopped} processes stopped; data kept in {where}")


def _load(directory: Path | None) -> ClusterLayout:
    where = cluster_dir(directory)
    layout = ClusterLayout.load(where)
    if layout is None:
        click.echo(f"Error: no cluster in {where} (run `ha-sc cluster up`)", err=True)
        sys.exit(1)
    return layout


def _waiting(where: Path) -> Callable[[int | None], None]:
    def say(holder: int | None) -> None:
        who = f"process {holder}" if holder is not None else "another command"
        click.echo(f"  waiting for {who}, which is changing the cluster in {where}", err=True)

    return say


def _cell(value: object) -> str:
    return "-" if value is None else str(value)
