"""A real Prometheus server for tests: loopback port, temporary config and data dir.

It scrapes a fixed list of ``host:port`` targets every ``SCRAPE_INTERVAL``; queries go
through its HTTP API. The process is ended by its own PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.net import free_port
from tests.waiting import eventually_sync

PROMETHEUS_BINARY = Path("/usr/bin/prometheus")
SCRAPE_INTERVAL = "500ms"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


class PrometheusMissing(RuntimeError):
    """The Prometheus binary these tests need is not installed."""


def config(jobs: dict[str, Iterable[str]]) -> str:
    """A scrape config (JSON is YAML) with one job of static targets per entry."""
    doc = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": sorted(targets)}]}
            for job, targets in jobs.items()
        ],
    }
    return json.dumps(doc, indent=2)


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's vector: each result's ``metric`` labels and ``value``."""
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with _DIRECT.open(address, timeout=5) as reply:
            doc = json.load(reply)
        assert doc["status"] == "success", doc
        results: list[dict[str, Any]] = doc["data"]["result"]
        return results

    def values(self, promql: str) -> dict[str, float]:
        """Each result's value by its ``instance`` label."""
        return {r["metric"].get("instance", ""): float(r["value"][1]) for r in self.query(promql)}


@contextmanager
def running_prometheus(directory: Path, jobs: dict[str, Iterable[str]]) -> Iterator[Prometheus]:
    if not PROMETHEUS_BINARY.exists():
        raise PrometheusMissing(
            f"{PROMETHEUS_BINARY} is missing: apt-get install -y prometheus (.ci/run does)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "prometheus.yml").write_text(config(jobs))
    address = f"127.0.0.1:{free_port()}"
    log = (directory / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            str(PROMETHEUS_BINARY),
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address={address}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Prometheus(f"http://{address}")
    try:

        def ready() -> bool:
            if process.poll() is not None:
                tail = (directory / "prometheus.log").read_text()[-2000:]
                raise RuntimeError(f"prometheus exited {process.returncode}: {tail}")
            try:
                with _DIRECT.open(f"{server.url}/-/ready", timeout=2) as reply:
                    return bool(reply.status == 200)
            except OSError:
                return False

        eventually_sync(ready, timeout=START_TIMEOUT, interval=0.2, what="prometheus ready")
        yield server
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT)
        log.close()
