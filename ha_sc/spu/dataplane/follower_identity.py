"""A private port that asks for client certificates answers a replica fetch only for
the follower SPU the connection's certificate names (common name ``spu-<id>``): no
one can move a high watermark in another SPU's name."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ha_sc.protocol.data import (
    DataError,
    ErrorCode,
    ReplicaFetchRequest,
    ReplicaFetchResponse,
    ReplicaSessionFetch,
    ReplicaSessionResult,
)
from ha_sc.protocol.tls import spu_claim_refusal
from ha_sc.spu.dataplane.connection import Dispatch
from ha_sc.spu.dataplane.serving import Frame

log = logging.getLogger("ha_sc.spu.dataplane")


def follower_refusal(header: Any, proven: int | None) -> str | None:
    """Why ``header`` is refused from a peer whose certificate proves SPU ``proven``
    (None: it names no SPU), or None if it may be served."""
    if not isinstance(header, ReplicaFetchRequest | ReplicaSessionFetch):
        return None
    refusal = spu_claim_refusal(header.follower, proven)
    return None if refusal is None else f"{header.type} for spu {header.follower}: {refusal}"


def identity_checked(dispatch: Dispatch, proven: int | None, peer: str) -> Dispatch:
    """``dispatch`` for a connection from ``peer`` whose certificate proves ``proven``;
    a refused fetch is answered ``malformed`` and logged once per connection."""
    logged = False

    def checked(header: Any, body: bytes) -> asyncio.Future[Frame]:
        nonlocal logged
        refusal = follower_refusal(header, proven)
        if refusal is None:
            return dispatch(header, body)
        if not logged:
            logged = True
            log.warning("private port: refused from %s: %s", peer, refusal)
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        error = DataError(code=ErrorCode.MALFORMED, message=refusal)
        answer = (
            ReplicaSessionResult(id=header.id, error=error)
            if isinstance(header, ReplicaSessionFetch)
            else ReplicaFetchResponse(id=header.id, error=error)
        )
        future.set_result((answer, b""))
        return future

    return checked
