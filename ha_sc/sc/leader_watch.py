"""An SPU's watch connection to one SC replica: a ``leader_notice`` at each newer leader.

An SPU keeps one on every SC replica's private port besides its session with the
leader. Whatever the replica's role, as soon as its view shows a leader of a newer
epoch than it last told this SPU of, it sends the epoch and the leader's private
address, so SPUs leave a frozen or cut-off leader at the win rather than after
their ``sc_timeout`` of silence. The connection carries nothing else; it ends
when the SPU closes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ha_sc.protocol import LeaderNotice, encode_message
from ha_sc.sc.replica_view import KnownLeader
from ha_sc.sc.spu_connection import READ_CHUNK

log = logging.getLogger("ha_sc.sc")

WATCH_POLL = 0.01
"""Seconds between looks at the replica's view of the leader."""


def notice_due(leader: KnownLeader | None, last_told: int) -> LeaderNotice | None:
    """The notice to send when ``leader`` is newer than the epoch last told of."""
    if leader is None or leader.epoch <= last_told or not leader.addresses.private:
        return None
    return LeaderNotice(epoch=leader.epoch, leader_private=leader.addresses.private)


async def serve_watch(
    spu_id: int,
    leader: Callable[[], KnownLeader | None],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    peer: str,
) -> str:
    """Tell the SPU of every newer leader until it closes; returns why the watch ended."""
    last_told = 0
    closed = asyncio.create_task(_until_closed(reader), name=f"spu-watch-{spu_id}-read")
    try:
        while not closed.done():
            notice = notice_due(leader(), last_told)
            if notice is not None:
                writer.write(encode_message(notice))
                await writer.drain()
                last_told = notice.epoch
                log.info(
                    "spu %d (%s) told of the leader of epoch %d at %s",
                    spu_id,
                    peer,
                    notice.epoch,
                    notice.leader_private,
                )
            await asyncio.wait({closed}, timeout=WATCH_POLL)
    except ConnectionError as exc:
        return f"connection lost: {exc}"
    finally:
        closed.cancel()
        await asyncio.gather(closed, return_exceptions=True)
    return "closed by the spu"


async def _until_closed(reader: asyncio.StreamReader) -> None:
    """Returns when the SPU closes its end (anything it sends is ignored)."""
    while await reader.read(READ_CHUNK):
        pass
