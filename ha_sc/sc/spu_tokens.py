"""Which token proves which SPU id: the SC's table (``sc run --spu-tokens FILE``).

The file has one line per SPU, ``<id> <token>``; blank lines and lines starting with
``#`` are skipped. Tokens are compared in constant time and never logged."""

from __future__ import annotations

import functools
import hmac
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ha_sc.protocol.fetch_proof import fetch_key
from ha_sc.secret_file import (
    MIN_SECRET_LENGTH,
    SecretFileError,
    is_usable_secret,
    read_private_text,
)

log = logging.getLogger("ha_sc.sc.spu")

_NO_TOKEN = "\0" * MIN_SECRET_LENGTH
"""Compared against when an id is unknown, so an unknown id takes as long as a known one."""


@dataclass(frozen=True)
class SpuTokens:
    """SPU id -> the token it registers with."""

    tokens: dict[int, str] = field(repr=False)

    def current(self) -> SpuTokens:
        return self

    @functools.cached_property
    def fetch_keys(self) -> dict[int, str]:
        """Every SPU's replica-fetch key (hex) by id, derived from its token; the SC hands
        them to the SPUs so leaders can check their followers without knowing tokens."""
        return {spu_id: fetch_key(token).hex() for spu_id, token in self.tokens.items()}

    def refusal(self, spu_id: int, token: str | None) -> str | None:
        """Why a registration as ``spu_id`` with ``token`` is refused; None if it is not."""
        expected = self.tokens.get(spu_id)
        matches = hmac.compare_digest((expected or _NO_TOKEN).encode(), (token or "").encode())
        if expected is None:
            return f"spu {spu_id} has no registration token at this SC"
        if token is None:
            return f"spu {spu_id} sent no registration token (spu run --token-file)"
        if not matches:
            return f"spu {spu_id} sent a wrong registration token"
        return None


def parse_spu_tokens(text: str, source: str) -> SpuTokens:
    """The table in ``text``; SecretFileError naming ``source`` and the line (never the
    token) if a line is not ``<id> <token>``, an id repeats, or a token is short."""
    tokens: dict[int, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        where = f"spu token file {source}, line {number}"
        if len(words) != 2 or not words[0].isdigit():
            raise SecretFileError(f"{where}: expected '<spu id> <token>'")
        spu_id, token = int(words[0]), words[1]
        if spu_id in tokens:
            raise SecretFileError(f"{where}: spu {spu_id} appears twice")
        if not is_usable_secret(token):
            raise SecretFileError(
                f"{where}: the token must have at least {MIN_SECRET_LENGTH} characters"
            )
        tokens[spu_id] = token
    return SpuTokens(tokens)


def read_spu_tokens(path: Path) -> SpuTokens:
    """The table in the file at ``path`` (mode 0600 or stricter)."""
    return parse_spu_tokens(read_private_text(path), str(path))


class SpuTokenFile:
    """The table in a file, read again when the file changes (an SPU added to the
    cluster is accepted without restarting the replicas); a change that cannot be read
    keeps the table last read, and says why in the log."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp = self._stamp_now()
        self._tokens = read_spu_tokens(path)

    def _stamp_now(self) -> tuple[int, int] | None:
        try:
            stat = self._path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_ino

    def current(self) -> SpuTokens:
        stamp = self._stamp_now()
        if stamp is not None and stamp != self._stamp:
            self._stamp = stamp
            try:
                self._tokens = read_spu_tokens(self._path)
                log.info(
                    "spu token file %s read again: %d SPUs", self._path, len(self._tokens.tokens)
                )
            except SecretFileError as unusable:
                log.warning(
                    "%s; keeping the %d tokens read before", unusable, len(self._tokens.tokens)
                )
        return self._tokens

    def refusal(self, spu_id: int, token: str | None) -> str | None:
        """Why a registration as ``spu_id`` with ``token`` is refused; None if it is not."""
        return self.current().refusal(spu_id, token)
