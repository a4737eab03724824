"""The replica-fetch keys an SPU holds to check its followers (protocol/fetch_proof.py).

The SC sends the table in each full sync, and again in a delta when its token file
changed. Until the first full sync, an SPU started with a token (``--token-file``)
checks and, knowing no key yet, refuses every follower; one without a token does not
check. A full sync without keys (an SC without ``--spu-tokens``) turns the check off.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType

log = logging.getLogger("ha_sc.spu.dataplane")


class FetchKeys:
    """Follower SPU id -> its fetch key, and whether followers must prove their id."""

    def __init__(self, spu_id: int, *, checking: bool) -> None:
        self._spu_id = spu_id
        self._keys: Mapping[int, bytes] = MappingProxyType({})
        self.checking = checking
        """Whether a replica fetch needs a connection proven as its follower."""
        if not checking:
            self._say_unchecked()

    def key(self, follower: int) -> bytes | None:
        return self._keys.get(follower) if self.checking else None

    def update(self, table: Mapping[int, str] | None) -> None:
        """Take the table (hex keys by SPU id) the SC sent; None: the SC checks no tokens."""
        if table is None:
            if self.checking:
                self._say_unchecked()
            self.checking = False
            self._keys = MappingProxyType({})
            return
        if not self.checking:
            log.info("spu %d: replica fetches to this spu are checked from now on", self._spu_id)
        self.checking = True
        self._keys = MappingProxyType({spu: bytes.fromhex(key) for spu, key in table.items()})

    def _say_unchecked(self) -> None:
        log.warning(
            "spu %d: replica fetches unauthenticated: any peer reaching the private port may "
            "fetch as any follower (the SC runs without --spu-tokens, or this SPU without "
            "--token-file)",
            self._spu_id,
        )
