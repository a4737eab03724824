"""The local cluster's secrets: made once per cluster, mode 0600, under ``<dir>/secrets``.

Members are given the files' paths, never the secrets themselves (a command line is
readable by every user of the host)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ha_sc.cluster.cert_authority import CA_CERT, CA_KEY, KeyPair, issue, make_ca
from ha_sc.protocol import parse_address
from ha_sc.secret_file import new_secret, read_secret, write_secret

SECRETS_DIR = "secrets"


def _ensured(path: Path) -> Path:
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_secret(path, new_secret())
    return path


def raft_secret_file(directory: Path) -> Path:
    """The Raft group's shared secret (made on first use)."""
    return _ensured(directory / SECRETS_DIR / "raft.secret")


def api_tokens_file(directory: Path) -> Path:
    """The replicas' API token table, one admin token (``admin.token``, made on first
    use) in it; written anew from that token."""
    admin = _ensured(directory / SECRETS_DIR / "admin.token")
    path = directory / SECRETS_DIR / "api-tokens"
    write_secret(path, f"admin {read_secret(admin)}")
    return path


def admin_token_file(directory: Path) -> Path:
    """The public API admin token the launcher and the CLI send."""
    return directory / SECRETS_DIR / "admin.token"


def spu_token_file(directory: Path, spu_id: int) -> Path:
    """SPU ``spu_id``'s registration token (made on first use)."""
    return _ensured(directory / SECRETS_DIR / f"spu-{spu_id}.token")


def spu_tokens_file(directory: Path, spu_ids: Iterable[int]) -> Path:
    """The SC's table of SPU tokens (``<id> <token>`` lines), written anew from the SPUs'
    token files so that an SPU added to the cluster is in it."""
    lines = [f"{spu_id} {read_secret(spu_token_file(directory, spu_id))}" for spu_id in spu_ids]
    path = directory / SECRETS_DIR / "spu-tokens"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_secret(path, "\n".join(lines))
    return path


def tls_dir(directory: Path) -> Path:
    """Where ``cluster up --tls`` keeps the cluster's CA and its members' certificates."""
    return directory / SECRETS_DIR / "tls"


def cluster_ca(directory: Path) -> Path:
    """The cluster CA's certificate (the CA made on first use)."""
    where = tls_dir(directory)
    if not (where / CA_CERT).exists() or not (where / CA_KEY).exists():
        make_ca(where, name=f"ha-sc cluster CA ({directory.resolve().name})")
    return where / CA_CERT


def member_certificate(directory: Path, name: str, addresses: Iterable[str]) -> KeyPair:
    """Member ``name``'s certificate and key, signed by the cluster CA (made on first
    use), naming the hosts of ``addresses`` and ``localhost``."""
    where = tls_dir(directory)
    pair = KeyPair(where / f"{name}.crt", where / f"{name}.key")
    if not pair.cert.exists() or not pair.key.exists():
        cluster_ca(directory)
        hosts = dict.fromkeys([*(parse_address(a)[0] for a in addresses), "localhost"])
        pair = issue(where, where, name, tuple(hosts))
    return pair
