"""Secrets read from files (the Raft secret, tokens): never from flags, never logged."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

MIN_SECRET_LENGTH = 16
"""Fewest characters a secret may have: a shorter one is guessed."""


class SecretFileError(ValueError):
    """A secret file that cannot be used; the message names the file, never its content."""


def read_private_text(path: Path) -> str:
    """The text of ``path``, refused with a reason if it is missing or unreadable, or if
    other users may read it (it must be mode 0600 or stricter)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as cannot:
        raise SecretFileError(f"secret file {path}: cannot read it ({cannot})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(
            f"secret file {path}: other users may read it (mode {stat.S_IMODE(mode):o}); "
            "chmod 600 it"
        )
    return text


def is_usable_secret(secret: str) -> bool:
    """Long enough, and one word."""
    return len(secret) >= MIN_SECRET_LENGTH and not any(c.isspace() for c in secret)


def read_secret(path: Path) -> str:
    """The secret in ``path``: its one line, surrounding whitespace removed.

    Refused with a reason: a missing or unreadable file, an empty or short secret, a
    file other users may read."""
    secret = read_private_text(path).strip()
    if not is_usable_secret(secret):
        raise SecretFileError(
            f"secret file {path}: must hold one secret of at least {MIN_SECRET_LENGTH} "
            "characters without spaces"
        )
    return secret


def new_secret() -> str:
    """A fresh random secret (256 bits, URL-safe characters)."""
    return secrets.token_urlsafe(32)


def write_secret(path: Path, secret: str) -> None:
    """Write ``secret`` to ``path``, mode 0600 from its creation (no moment where others
    may read it); an existing file is replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secret + "\n")
