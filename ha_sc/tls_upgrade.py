"""TLS on a connection a listener has already accepted and counted.

A listener that passed its context to ``start_server`` would handshake before its own
callback runs, so connections in their handshake would escape its per-peer caps. A
listener instead calls ``hold`` in the accept callback itself (before the loop hands
any byte to the stream), checks its caps, then ``upgrade``s within its own timeout.
"""

from __future__ import annotations

import asyncio
import ssl


def hold(writer: asyncio.StreamWriter) -> None:
    """Keep the peer's first bytes (its ClientHello) in the socket until ``upgrade``:
    call it in the callback ``start_server`` calls, not in a task started from it."""
    transport = writer.transport
    assert isinstance(transport, asyncio.ReadTransport)
    transport.pause_reading()


async def upgrade(
    writer: asyncio.StreamWriter, context: ssl.SSLContext, timeout: float
) -> str | None:
    """Handshake as the server; None once done, else why it failed (the connection is
    then unusable: close it). A handshake not done within ``timeout`` s fails."""
    try:
        await writer.start_tls(context, ssl_handshake_timeout=timeout)
    except TimeoutError:
        return f"no TLS handshake within {timeout:g} s"
    except (OSError, EOFError) as failed:  # ssl.SSLError, a reset, an abort
        return f"TLS handshake failed: {failed}"
    return None
