"""etcd3 and aetcd side by side: each client in a process of its own, one etcd for both.

The two cannot share a process: etcd3 0.12 loads only with protobuf's pure-Python
implementation, chosen process-wide before protobuf is first imported, and aetcd
runs on the C one. A benchmark started with ``--etcd-client both`` starts one etcd,
runs itself again per client and round as a child (``--child-client``) against that
server, alternating the clients so both see the same load on a shared machine, and
prints each child's figures, then every figure's median over the rounds per client
and the ratio aetcd / etcd3.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import REPO

CLIENTS = ("etcd3", "aetcd")
RESULT_PREFIX = "RESULT "


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str


def open_etcd_kv(client: str, endpoint: str, root: str) -> Any:
    """An EtcdKv of ``client``, in a child process of its own."""
    if client == "etcd3":
        os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
        from bench.etcd3_kv import EtcdKv as Etcd3Kv

        return Etcd3Kv([endpoint], root=root)
    from ha_sc.kv.etcd import EtcdKv

    return EtcdKv([endpoint], root=root)


def protobuf_implementation() -> str:
    from google.protobuf.internal import api_implementation

    return str(api_implementation.Type())


def report(figures: dict[str, float]) -> None:
    """Hand a child's figures to the parent (one line on stdout)."""
    print(RESULT_PREFIX + json.dumps(figures), flush=True)


def client_tree(client: str) -> Path:
    """The source tree whose code runs as ``client``."""
    del client
    return REPO


def run_child(client: str, module: str, args: Sequence[str]) -> dict[str, float]:
    """Run ``python -m module --child-client client *args``; echo its output, return its figures."""
    env = {**os.environ, "PYTHONPATH": str(client_tree(client))}
    if client == "etcd3":
        env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
    else:
        env.pop("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", None)
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--child-client", client, *args],
        cwd=client_tree(client),
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
