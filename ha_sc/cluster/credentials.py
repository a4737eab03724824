"""The local cluster's secrets: made once per cluster, mode 0600, under ``<dir>/secrets``.

Members are given the files' paths, never the secrets themselves (a command line is
readable by every user of the host)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

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
