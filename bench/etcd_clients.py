"""etcd3 and aetcd side by side: each client in a process of its own, one etcd for both.

The two cannot share a process: etcd3 0.12 loads only with protobuf's pure-Python
implementation, chosen process-wide before protobuf is first imported, and aetcd
runs on the C one. A benchmark started with ``--etcd-client both`` starts one etcd
and runs a child per client and round against it (``--child-client``), alternating
the clients so both see the same load on a shared machine; it prints each child's
figures, then every figure's median over the rounds per client and the ratio
aetcd / etcd3.

The project no longer ships the etcd3 client: its child runs the benchmark of
ETCD3_COMMIT, the last commit that had it (exported to a temporary directory with
``git archive``), or of a checkout given with ``--etcd3-from``; the ``etcd3``
package must be installed (``pip install etcd3==0.12.0``; nothing else needs it).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from bench.common import REPO
from ha_sc.kv.api import KvStore

CLIENTS = ("etcd3", "aetcd")
ETCD3_COMMIT = "58ac5861f1229de41cc1e9f8852a82f1ed20198b"
"""The last commit with the etcd3 client (bench/etcd3_kv.py) and these child options."""
RESULT_PREFIX = "RESULT "


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str


def add_client_arguments(parser: argparse.ArgumentParser, *, rounds: str) -> None:
    parser.add_argument(
        "--etcd-client",
        choices=[*CLIENTS, "both"],
        default="aetcd",
        help="etcd client(s) to measure, each in its own process against one etcd "
        "(etcd3: the client before aetcd, see --etcd3-from)",
    )
    parser.add_argument(
        "--etcd3-from",
        default=ETCD3_COMMIT,
        metavar="COMMIT|DIR",
        help="the code the etcd3 client runs: a commit of this repository that still has "
        "it, or a checkout of one (default: %(default)s)",
    )
    parser.add_argument("--rounds", type=int, default=1, help=rounds)
    parser.add_argument("--child-client", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--etcd-endpoint", help=argparse.SUPPRESS)


def chosen_clients(args: argparse.Namespace) -> list[str]:
    return list(CLIENTS) if args.etcd_client == "both" else [args.etcd_client]


def open_etcd_kv(client: str, endpoint: str, root: str) -> KvStore:
    """The aetcd EtcdKv, in a child process (etcd3's child runs the code of ETCD3_COMMIT)."""
    if client != "aetcd":
        raise SystemExit(f"this tree has no {client} client; see --etcd3-from")
    from ha_sc.kv.etcd import EtcdKv
    from ha_sc.kv.etcd_limits import MANAGED_SERVER

    # the bench's etcd runs with MANAGED_SERVER's limits (tests/etcd_server.py)
    return EtcdKv([endpoint], root=root, max_txn_ops=MANAGED_SERVER.max_txn_ops)


def protobuf_implementation() -> str:
    from google.protobuf.internal import api_implementation

    return str(api_implementation.Type())


def report(figures: dict[str, float]) -> None:
    """Hand a child's figures to the parent (one line on stdout)."""
    print(RESULT_PREFIX + json.dumps(figures), flush=True)


@contextmanager
def client_trees(clients: Sequence[str], etcd3_from: str) -> Iterator[dict[str, Path]]:
    """The source tree each client's child runs in."""
    trees = {"aetcd": REPO}
    if "etcd3" not in clients:
        yield trees
        return
    if find_spec("etcd3") is None:
        raise SystemExit("the etcd3 package is not installed: pip install etcd3==0.12.0")
    if Path(etcd3_from).is_dir():
        yield {**trees, "etcd3": Path(etcd3_from)}
        return
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", etcd3_from],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise SystemExit(
            f"cannot export {etcd3_from} for the etcd3 client: "
            f"{archive.stderr.decode(errors='replace').strip()}; give a checkout with --etcd3-from"
        )
    with tempfile.TemporaryDirectory(prefix="bench-etcd3-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        yield {**trees, "etcd3": Path(tmp)}


def run_child(tree: Path, client: str, module: str, args: Sequence[str]) -> dict[str, float]:
    """Run ``python -m module --child-client client *args`` in ``tree``; echo its output,
    return its figures."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if client == "etcd3":
        env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
    else:
        env.pop("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", None)
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--child-client", client, *args],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    figures: dict[str, float] | None = None
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(RESULT_PREFIX):
            figures = json.loads(line[len(RESULT_PREFIX) :])
        else:
            print(f"  {client}| {line}", end="", flush=True)
    if process.wait() != 0 or figures is None:
        raise SystemExit(f"the {client} run failed (exit code {process.returncode})")
    return figures


def compare(results: dict[str, list[dict[str, float]]], metrics: Sequence[Metric]) -> None:
    """Each figure's median over the rounds per client, and the ratio aetcd / etcd3."""
    rounds = min(len(r) for r in results.values())
    print(f"\netcd3 vs aetcd, median of {rounds} round(s) each, same etcd, clients alternating:")
    print(f"  {'figure':<58} {'etcd3':>12} {'aetcd':>12} {'aetcd/etcd3':>12}")
    for metric in metrics:
        medians = {
            client: statistics.median(r[metric.key] for r in runs)
            for client, runs in results.items()
        }
        old, new = medians.get("etcd3"), medians.get("aetcd")
        ratio = f"{new / old:.2f}x" if old and new is not None else "-"
        cells = [_figure(medians[c]) if c in medians else "-" for c in CLIENTS]
        label = f"{metric.label} ({metric.unit})"
        print(f"  {label:<58} {cells[0]:>12} {cells[1]:>12} {ratio:>12}")


def _figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"
