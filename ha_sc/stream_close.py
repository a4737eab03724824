"""Closing an asyncio stream without waiting on the peer for long.

``writer.close()`` followed by ``wait_closed()`` waits for the unsent bytes to leave
and, over TLS, for the peer's answer to our close_notify: from a frozen or cut-off
peer that answer never comes, and asyncio waits out its TLS shutdown timeout (30 s).
A link that leaves such a peer (an SPU moving to a new SC leader, a connection timed
out for silence) must not be held by it, so the wait here is short and then the
connection is dropped; a task being cancelled does not wait at all.
"""

from __future__ import annotations

import asyncio

CLOSE_GRACE = 0.5
"""Seconds a close waits for the peer before the connection is dropped."""


async def close_stream(writer: asyncio.StreamWriter, *, grace: float = CLOSE_GRACE) -> None:
    """Close ``writer``; drop the connection if that takes longer than ``grace`` or the
    current task is being cancelled."""
    writer.close()
    task = asyncio.current_task()
    if grace <= 0 or (task is not None and task.cancelling()):
        writer.transport.abort()
        return
    try:
        async with asyncio.timeout(grace):
            await writer.wait_closed()
    except TimeoutError:
        writer.transport.abort()
    except (ConnectionError, OSError):
        pass
    except asyncio.CancelledError:
        writer.transport.abort()
        raise
