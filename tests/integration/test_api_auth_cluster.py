"""`cluster up --api-auth`: the public API needs a token, and the CLI sends the cluster's
admin token (or the one --token-file names)."""

from __future__ import annotations

import json
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ha_sc.secret_file import new_secret, read_secret, write_secret
from tests.integration.test_cluster_cli import cluster_dir, ha_sc

__all__ = ["cluster_dir"]  # the fixture: a cluster directory, `cluster down` after

pytestmark = [pytest.mark.raft, pytest.mark.slow]


def _status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def test_the_cli_sends_the_cluster_admin_token_and_others_are_refused(
    cluster_dir: Path, tmp_path: Path
) -> None:
    ha_sc(cluster_dir, "cluster", "up", "--replicas", "1", "--spus", "1", "--api-auth")
    admin = read_secret(cluster_dir / "secrets" / "admin.token")
    ha_sc(cluster_dir, "topic", "create", "orders", "-p", "1", "-r", "1")
    assert "orders" in ha_sc(cluster_dir, "topic", "list").stdout
    status = json.loads(ha_sc(cluster_dir, "cluster", "status", "-O", "json").stdout)
    assert status["leader"] is not None

    wrong = tmp_path / "wrong.token"
    write_secret(wrong, new_secret())
    refused = ha_sc(cluster_dir, "--token-file", str(wrong), "topic", "list", check=False)
    assert refused.returncode == 1 and "bearer token is not known" in refused.stderr

    named = ha_sc(
        cluster_dir,
        "--token-file",
        str(cluster_dir / "secrets" / "admin.token"),
        "topic",
        "delete",
        "orders",
    )
    assert named.returncode == 0
    assert "orders" not in ha_sc(cluster_dir, "topic", "list").stdout

    public = json.loads((cluster_dir / "cluster.json").read_text())["replicas"][0]["public"]
    assert _status_of(f"http://{public}/api/v1/topics") == 401
    assert _status_of(f"http://{public}/healthz") == 200

    secrets = sorted((cluster_dir / "secrets").iterdir())
    assert {p.name for p in secrets} >= {"raft.secret", "spu-5001.token", "admin.token"}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in secrets)
    logs = "".join(p.read_text() for p in (cluster_dir / "logs").glob("*.log"))
    assert "public API needs a bearer token" in logs
    assert "traffic encrypted with the group secret" in logs
    assert "SPU registration needs a token" in logs
    assert admin not in logs and read_secret(wrong) not in logs
