"""A local cluster for benchmarks: `ha-sc cluster up` in a temporary directory, and the CLI
and admin client pointed at it. With ``BENCH_KEEP_LOGS=DIR`` in the environment the
cluster's logs (SC replicas, SPUs, a managed etcd) are copied into DIR when it stops."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def ha_sc(directory: Path, *args: str, timeout: float = 300, check: bool = True) -> str:
    """Run the CLI on the cluster in ``directory``; its stdout (raises on failure when
    ``check``)."""
    env = {**os.environ, "HA_SC_DIR": str(directory)}
    env.pop("HA_SC_ENDPOINTS", None)
    return subprocess.run(
        [sys.executable, "-m", "ha_sc.cli", "--log-level", "warning", *args],
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    ).stdout


def status(directory: Path) -> dict[str, Any]:
    """``cluster status`` as JSON (it exits 1 while no replica leads: not a failure here)."""
    out = ha_sc(directory, "cluster", "status", "-O", "json", check=False)
    doc: dict[str, Any] = json.loads(out)
    return doc


def layout(directory: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((directory / "cluster.json").read_text())
    return doc


def public_endpoints(directory: Path) -> list[str]:
    return [r["public"] for r in layout(directory)["replicas"]]


@contextmanager
def local_cluster(
    backend: str, *, replicas: int = 3, spus: int = 3, up_flags: Sequence[str] = ()
) -> Iterator[Path]:
    """A running cluster in a temporary directory, stopped (by PID) and removed after;
    ``up_flags`` go to `cluster up` (lease timings, say)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{backend}-") as tmp:
        directory = Path(tmp)
        ha_sc(
            directory,
            "cluster", "up",
            "--replicas", str(replicas),
            "--spus", str(spus),
            "--backend", backend,
            *up_flags,
        )  # fmt: skip
        try:
            yield directory
        finally:
            ha_sc(directory, "cluster", "down")
            keep_logs(directory)


KEEP_LOGS = "BENCH_KEEP_LOGS"
"""Environment variable: a directory the cluster's logs are copied into (a folder named
after the cluster's) before the cluster's temporary directory is removed."""


def keep_logs(directory: Path) -> None:
    """Copy ``directory``'s logs where ``BENCH_KEEP_LOGS`` says, if it is set."""
    target = os.environ.get(KEEP_LOGS)
    if target:
        kept = Path(target) / directory.name
        shutil.copytree(directory / "logs", kept, dirs_exist_ok=True)
        print(f"cluster logs kept in {kept}", file=sys.stderr)
