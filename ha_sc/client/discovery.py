"""Where the cluster's public API is: given addresses, the environment, or the cluster file.

In that order: explicit ``host:port`` addresses; ``HA_SC_ENDPOINTS`` (a comma
list); the file the launcher writes, ``$HA_SC_DIR/cluster.json`` (default
``~/.ha-sc/cluster.json``), of which only the replicas' public addresses are read:
``{"replicas": [{"id", "public", "private", "pid"}, ...], ...}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ha_sc.client.errors import NoEndpoints
from ha_sc.secret_file import read_secret

ENV_ENDPOINTS = "HA_SC_ENDPOINTS"
ENV_TOKEN_FILE = "HA_SC_TOKEN_FILE"
ENV_TLS_CA = "HA_SC_TLS_CA"
ENV_DIR = "HA_SC_DIR"
DEFAULT_DIR = "~/.ha-sc"
CLUSTER_FILE = "cluster.json"


def cluster_file(environ: Mapping[str, str] | None = None) -> Path:
    """Where the launcher writes the cluster's description."""
    env = os.environ if environ is None else environ
    return Path(env.get(ENV_DIR) or DEFAULT_DIR).expanduser() / CLUSTER_FILE


def read_cluster_file(path: Path) -> list[str]:
    """The public addresses of the replicas a cluster file lists."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NoEndpoints(f"cannot read the cluster file {path}: {exc}") from exc
    replicas = doc.get("replicas") if isinstance(doc, dict) else None
    if not isinstance(replicas, list):
        raise NoEndpoints(f"the cluster file {path} has no 'replicas' list")
    publics = [
        replica["public"]
        for replica in replicas
        if isinstance(replica, dict) and isinstance(replica.get("public"), str)
    ]
    if not publics:
        raise NoEndpoints(f"the cluster file {path} names no replica with a public address")
    return publics


def find_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The public API bearer token to send: from the file ``HA_SC_TOKEN_FILE`` names,
    else the admin token file the cluster file records (``cluster up --api-auth``),
    else none. SecretFileError if a named file cannot be used."""
    env = os.environ if environ is None else environ
    named = env.get(ENV_TOKEN_FILE)
    if named:
        return read_secret(Path(named).expanduser())
    path = cluster_file(env)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    recorded = doc.get("api_token_file") if isinstance(doc, dict) else None
    return read_secret(Path(recorded)) if isinstance(recorded, str) else None


def find_tls_ca(environ: Mapping[str, str] | None = None) -> Path | None:
    """The CA file that signed the cluster's certificates, when its ports serve TLS:
    ``HA_SC_TLS_CA``, else the one the cluster file records (``cluster up --tls``),
    else none (plain TCP)."""
    env = os.environ if environ is None else environ
    named = env.get(ENV_TLS_CA)
    if named:
        return Path(named).expanduser()
    try:
        doc = json.loads(cluster_file(env).read_text())
    except (OSError, ValueError):
        return None
    recorded = doc.get("tls_ca") if isinstance(doc, dict) else None
    return Path(recorded) if isinstance(recorded, str) else None


def find_endpoints(
    given: Sequence[str] = (), *, environ: Mapping[str, str] | None = None
) -> list[str]:
    """The public API addresses to try, in order; raises NoEndpoints saying what to do."""
    if given:
        return list(given)
    env = os.environ if environ is None else environ
    listed = [part.strip() for part in env.get(ENV_ENDPOINTS, "").split(",") if part.strip()]
    if listed:
        return listed
    path = cluster_file(env)
    if path.exists():
        return read_cluster_file(path)
    raise NoEndpoints(
        "no SC endpoints: pass --sc HOST:PORT (repeat for each replica), "
        f"set {ENV_ENDPOINTS}=host:port,host:port, or start a local cluster, "
        f"which writes {path}"
    )
