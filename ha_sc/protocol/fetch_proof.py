"""How a follower SPU proves its id on a leader SPU's private port, sans-IO.

Each SPU's *fetch key* is derived from its registration token,
``HMAC-SHA256(token, b"ha-sc replica fetch key")``: the SPU derives its own, the SC
derives every SPU's from its token table and gives them to the SPUs over their
authenticated control sessions. A leader SPU thus checks followers without ever
holding a token (which would let it register as another SPU). On a new private-port
connection the follower says who it is (``replica_hello``), the leader answers a fresh
random nonce (``replica_challenge``), and the follower answers
``HMAC-SHA256(fetch key, nonce || leader id || follower id)`` (``replica_proof``), ids as
8-byte big-endian integers. The leader compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct

FETCH_KEY_LABEL = b"ha-sc replica fetch key"
NONCE_BYTES = 32
PROOF_BYTES = hashlib.sha256().digest_size

_IDS = struct.Struct(">QQ")
_NO_KEY = bytes(PROOF_BYTES)
"""Checked against when the follower has no key here, so that takes as long as a real check."""


def fetch_key(token: str) -> bytes:
    """The fetch key of the SPU whose registration token is ``token``."""
    return hmac.new(token.encode(), FETCH_KEY_LABEL, hashlib.sha256).digest()


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def fetch_proof(key: bytes, nonce: bytes, *, leader: int, follower: int) -> bytes:
    """What follower ``follower`` answers leader ``leader``'s ``nonce`` with."""
    return hmac.new(key, nonce + _IDS.pack(leader, follower), hashlib.sha256).digest()


def proof_holds(
    key: bytes | None, nonce: bytes, proof: bytes, *, leader: int, follower: int
) -> bool:
    """Whether ``proof`` answers ``nonce`` with ``key`` (False without a key), in constant
    time."""
    expected = fetch_proof(
        key if key is not None else _NO_KEY, nonce, leader=leader, follower=follower
    )
    return hmac.compare_digest(expected, proof) and key is not None
