"""One connection on a leader SPU's private port: which follower it has proven to be.

A follower proves its id once per connection (protocol/fetch_proof.py): ``replica_hello``
gets a fresh nonce, ``replica_proof`` is checked against the key the SC gave for that
follower. From then on every ``replica_fetch`` on the connection must name that
follower, and so must every ``replica_session_fetch``: the connection's one fetch
session (``leader_session.py``) is the proven follower's. While the SPU checks
(``FetchKeys.checking``), a fetch on a connection that proved nothing, or naming another
follower, is answered ``unauthorized`` and the connection closed; so is a failed
proof. Without the check, unproven fetches pass (a proven connection is still held to
its id). Refusals are logged once per peer host per 30 s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ha_sc.protocol.admission import RefusalLog
from ha_sc.protocol.data import (
    DataError,
    ErrorCode,
    ReplicaChallenge,
    ReplicaFetchRequest,
    ReplicaFetchResponse,
    ReplicaHello,
    ReplicaProof,
    ReplicaProven,
    ReplicaSessionFetch,
    ReplicaSessionResult,
)
from ha_sc.protocol.fetch_proof import new_nonce, proof_holds
from ha_sc.spu.dataplane.connection import Dispatch
from ha_sc.spu.dataplane.dispatch import answered
from ha_sc.spu.dataplane.leader_session import LeaderSession
from ha_sc.spu.dataplane.serving import Frame
from ha_sc.spu.fetch_keys import FetchKeys

log = logging.getLogger("ha_sc.spu.dataplane")


def fetch_refusal(spu_id: int, follower: int, proven: int | None, checking: bool) -> str | None:
    """Why leader ``spu_id`` refuses a fetch naming ``follower`` on a connection proven as
    ``proven`` (None: nothing proven); None if it serves it."""
    if proven is None and not checking:
        return None
    if proven is None:
        return (
            f"spu {spu_id}: refused a replica fetch naming follower {follower} on a "
            "connection that proved no follower id"
        )
    if proven != follower:
        return (
            f"spu {spu_id}: refused a replica fetch naming follower {follower} on a "
            f"connection proven as {proven}"
        )
    return None


class ReplicaSession:
    """Wraps the private port's dispatch for one connection (from host ``host``); called
    with each request, closed when the connection ends."""

    def __init__(
        self,
        spu_id: int,
        keys: FetchKeys,
        dispatch: Dispatch,
        host: str,
        refusals: RefusalLog,
        open_session: Callable[[int], LeaderSession] | None = None,
    ) -> None:
        """``open_session``: a new fetch session for a follower id (None: session
        fetches go to ``dispatch``, which refuses them)."""
        self._spu_id = spu_id
        self._open_session = open_session
        self._session: LeaderSession | None = None
        self._keys = keys
        self._dispatch = dispatch
        self._host = host
        self._refusals = refusals
        self._challenge: tuple[int, bytes] | None = None
        """The follower id said in the hello, and the nonce it was sent."""
        self.proven: int | None = None
        """The follower id this connection proved, once it has."""

    def __call__(self, header: Any, body: bytes) -> asyncio.Future[Frame]:
        return self.dispatch(header, body)

    def close(self) -> None:
        """The connection ended: so does its fetch session."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def dispatch(self, header: Any, body: bytes) -> asyncio.Future[Frame]:
        if isinstance(header, ReplicaHello):
            nonce = new_nonce()
            self._challenge = (header.follower, nonce)
            return answered(ReplicaChallenge(id=header.id, nonce=nonce.hex()))
        if isinstance(header, ReplicaProof):
            return self._check(header)
        if isinstance(header, ReplicaFetchRequest):
            refusal = fetch_refusal(self._spu_id, header.follower, self.proven, self._keys.checking)
            if refusal is not None:
                self._refused(refusal)
                return answered(ReplicaFetchResponse(id=header.id, error=_unauthorized(refusal)))
        if isinstance(header, ReplicaSessionFetch) and self._open_session is not None:
            refusal = fetch_refusal(self._spu_id, header.follower, self.proven, self._keys.checking)
            if refusal is not None:
                self._refused(refusal)
                return answered(ReplicaSessionResult(id=header.id, error=_unauthorized(refusal)))
            return self._session_of(header.follower).fetch(header, body)
        return self._dispatch(header, body)

    def _session_of(self, follower: int) -> LeaderSession:
        """The connection's fetch session, for ``follower`` (a new one if it was another's:
        possible only on a connection that proved nothing, while nothing is checked)."""
        session = self._session
        if session is None or session.follower != follower:
            if session is not None:
                session.close()
            assert self._open_session is not None
            session = self._session = self._open_session(follower)
        return session

    def _check(self, proof: ReplicaProof) -> asyncio.Future[Frame]:
        challenge, self._challenge = self._challenge, None  # a nonce answers one proof only
        refusal = self._proof_refusal(proof, challenge)
        if refusal is not None:
            self._refused(refusal)
            return answered(ReplicaProven(id=proof.id, error=_unauthorized(refusal)))
        self.proven = proof.follower
        log.debug(
            "spu %d: a connection from %s proved follower %d",
            self._spu_id,
            self._host,
            proof.follower,
        )
        return answered(ReplicaProven(id=proof.id))

    def _proof_refusal(
        self, proof: ReplicaProof, challenge: tuple[int, bytes] | None
    ) -> str | None:
        where = f"spu {self._spu_id}: refused the proof of follower {proof.follower}"
        if challenge is None or challenge[0] != proof.follower:
            return f"{where}: no replica_hello asked a challenge for it on this connection"
        if self.proven is not None and self.proven != proof.follower:
            return f"{where} on a connection proven as {self.proven}"
        if not self._keys.checking:
            return None
        key = self._keys.key(proof.follower)
        holds = proof_holds(
            key,
            challenge[1],
            bytes.fromhex(proof.proof),
            leader=self._spu_id,
            follower=proof.follower,
        )
        if key is None:
            return f"{where}: no fetch key for it is known here"
        if not holds:
            return f"{where}: a wrong proof"
        return None

    def _refused(self, refusal: str) -> None:
        if self._refusals.due(self._host, time.monotonic()):
            log.warning(
                "%s (from %s; closing the connection; further refusals of that host are not "
                "logged for %.0f s)",
                refusal,
                self._host,
                self._refusals.every,
            )


def _unauthorized(message: str) -> DataError:
    return DataError(code=ErrorCode.UNAUTHORIZED, message=message)
