"""`cluster up --tls`: 3 SC replicas and 2 SPUs as processes with TLS on every port; the
CLI finds the CA in the cluster file, and a client without it (or with another CA)
gets nothing."""

from __future__ import annotations

import json
import os
import signal
import ssl
import stat
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ha_sc.cluster.cert_authority import make_ca
from tests.integration.test_cluster_cli import cluster_dir, ha_sc, retire, status
from tests.waiting import eventually_sync

__all__ = ["cluster_dir"]  # the fixture: a cluster directory, `cluster down` after

pytestmark = [pytest.mark.raft, pytest.mark.slow]


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("tls") / "cluster"
    try:
        ha_sc(directory, "cluster", "up", "--replicas", "3", "--spus", "2", "--tls")
        yield directory
    finally:
        retire(directory)


def cli_elsewhere(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI run with no cluster file to find (so with no CA but what ``args`` give)."""
    return ha_sc(tmp_path / "no-cluster", *args, check=False)


def public_of(directory: Path) -> str:
    doc = json.loads((directory / "cluster.json").read_text())
    return str(doc["replicas"][0]["public"])


def test_every_verb_works_over_tls_with_no_extra_flag(tls_cluster: Path, tmp_path: Path) -> None:
    first = status(tls_cluster)
    assert first["leader"] is not None
    assert [s["status"] for s in first["spus"]] == ["Online"] * 2

    ha_sc(tls_cluster, "topic", "create", "orders", "-p", "2", "-r", "2")
    records = tmp_path / "records"
    records.write_text("one\ntwo\nthree\n")
    ha_sc(tls_cluster, "produce", "orders", "-f", str(records))
    consumed = ha_sc(tls_cluster, "consume", "orders", "-B", "-d")
    assert sorted(consumed.stdout.split()) == ["one", "three", "two"]

    def followers_leo() -> int:
        partitions = json.loads(ha_sc(tls_cluster, "partition", "list", "-O", "json").stdout)
        return sum(r["leo"] for p in partitions for r in p["status"]["replicas"])

    # every follower fetched its leader's records over the private port's TLS
    eventually_sync(followers_leo, until=lambda leo: leo == 3, timeout=30, interval=0.5)

    doc = json.loads((tls_cluster / "cluster.json").read_text())
    assert doc["tls_ca"] == str(tls_cluster / "secrets" / "tls" / "ca.crt")
    keys = list((tls_cluster / "secrets" / "tls").glob("*.key"))
    assert len(keys) == 1 + 3 + 2
    assert all(stat.S_IMODE(key.stat().st_mode) == 0o600 for key in keys)
    logs = "".join(p.read_text() for p in (tls_cluster / "logs").glob("*.log"))
    assert logs.count("TLS on the public API and the private port") == 3
    assert logs.count("TLS on both data ports") == 2
    assert "unencrypted" not in logs


def test_a_client_without_the_cluster_ca_is_refused(tls_cluster: Path, tmp_path: Path) -> None:
    public = public_of(tls_cluster)
    plain = cli_elsewhere(tmp_path, "topic", "list", "--sc", public)
    assert plain.returncode == 1 and "no SC replica could be reached" in plain.stderr
    assert "--tls-ca" in plain.stderr

    other = tmp_path / "other-ca"
    make_ca(other)
    wrong = cli_elsewhere(
        tmp_path, "--tls-ca", str(other / "ca.crt"), "topic", "list", "--sc", public
    )
    assert wrong.returncode == 1 and "certificate verify failed" in wrong.stderr

    ca = tls_cluster / "secrets" / "tls" / "ca.crt"
    right = cli_elsewhere(tmp_path, "--tls-ca", str(ca), "topic", "list", "--sc", public)
    assert right.returncode == 0, right.stderr

    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(f"http://{public}/healthz", timeout=5)
    context = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(f"https://{public}/healthz", timeout=5, context=context) as ok:
        assert ok.status == 200


def test_spus_leave_a_frozen_leader_over_tls_at_once(tls_cluster: Path) -> None:
    """A frozen leader never answers the TLS close of the SPUs leaving it; they move to
    the new leader at its win all the same, so a create right after is provisioned."""
    frozen = status(tls_cluster)["leader"]
    os.kill(frozen["pid"], signal.SIGSTOP)
    try:
        eventually_sync(
            lambda: status(tls_cluster)["leader"],
            until=lambda leader: leader is not None and leader["id"] != frozen["id"],
            timeout=30,
            interval=0.3,
        )
        created = ha_sc(tls_cluster, "topic", "create", "after-freeze", "-p", "1", "-r", "2",
                        check=False)  # fmt: skip
        assert created.returncode == 0, created.stderr
    finally:
        os.kill(frozen["pid"], signal.SIGCONT)
    eventually_sync(
        lambda: status(tls_cluster),
        until=lambda doc: (
            doc["leader"] is not None and [s["status"] for s in doc["spus"]] == ["Online"] * 2
        ),
        timeout=30,
        interval=0.5,
    )


def test_a_replica_is_removed_over_tls(tls_cluster: Path) -> None:
    standby = next(r for r in status(tls_cluster)["replicas"] if r["role"] == "standby")
    ha_sc(tls_cluster, "cluster", "remove", standby["id"])
    after = status(tls_cluster)
    assert after["leader"] is not None
    assert standby["id"] not in [r["id"] for r in after["replicas"]]


def test_tls_is_not_turned_on_under_running_plain_members(cluster_dir: Path) -> None:
    ha_sc(cluster_dir, "cluster", "up", "--replicas", "1", "--spus", "1")
    refused = ha_sc(cluster_dir, "cluster", "up", "--tls", check=False)
    assert refused.returncode == 1 and "cluster down` first" in refused.stderr
    assert json.loads((cluster_dir / "cluster.json").read_text())["tls_ca"] is None
    assert status(cluster_dir)["leader"] is not None


@pytest.mark.etcd
def test_the_launchers_etcd_serves_tls_to_replicas_with_certificates(cluster_dir: Path) -> None:
    """On etcd, ``cluster up --tls`` runs its etcd with TLS and client certificates
    required: the replicas reach it with theirs, a client without one is refused."""
    ha_sc(cluster_dir, "cluster", "up", "--backend", "etcd", "--replicas", "2", "--spus", "1",
          "--tls")  # fmt: skip
    ha_sc(cluster_dir, "topic", "create", "over-tls", "-p", "1", "-r", "1")
    doc = json.loads((cluster_dir / "cluster.json").read_text())
    endpoint = doc["etcd"]["endpoints"][0]
    logs = "".join(p.read_text() for p in (cluster_dir / "logs").glob("sc-*.log"))
    assert f"etcd at https://{endpoint}, TLS, client certificate" in logs
    tls = cluster_dir / "secrets" / "tls"
    context = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    with pytest.raises(OSError):  # a handshake without a client certificate is refused
        urllib.request.urlopen(f"https://{endpoint}/version", timeout=5, context=context).read()
    context.load_cert_chain(str(tls / "sc-1.crt"), str(tls / "sc-1.key"))
    with urllib.request.urlopen(f"https://{endpoint}/version", timeout=5, context=context) as ok:
        assert b"etcdserver" in ok.read()
