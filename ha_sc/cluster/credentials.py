"""The local cluster's secrets: made once per cluster, mode 0600, under ``<dir>/secrets``.

Members are given the files' paths, never the secrets themselves (a command line is
readable by every user of the host)."""

from __future__ import annotations

from pathlib import Path

from ha_sc.secret_file import new_secret, write_secret

SECRETS_DIR = "secrets"


def _ensured(path: Path) -> Path:
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_secret(path, new_secret())
    return path


def raft_secret_file(directory: Path) -> Path:
    """The Raft group's shared secret (made on first use)."""
    return _ensured(directory / SECRETS_DIR / "raft.secret")
