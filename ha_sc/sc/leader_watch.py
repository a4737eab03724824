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

from ha_sc.api.replica_view import KnownLeader
from ha_sc.protocol import LeaderNotice, encode_message
from ha_sc.sc.spu_connection import READ_CHUNK

log = logging.getLogger("ha_sc.sc")

WATCH_POLL = 0.01
"""Seconds between looks at the replica's view of the leader."""


def notice_due(leader: KnownLeader | None, last_told: int) -> LeaderNotice | None:
    """The notice to send when ``leader`` is newer than the epoch last told of."""
    if leader is None or leader.epoch <= last_told or not leader.addresses.private:
        return None
    return LeaderNotice(epoch=leader.epoch, leader_private=leader.addresses.private)


class LeaderChanges:
    """One look at the replica's view of the leader every ``WATCH_POLL`` s for all the
    watches it serves (run ``run`` as a task); ``next_change`` wakes at a new epoch."""

    def __init__(self, leader: Callable[[], KnownLeader | None]) -> None:
        self.leader = leader
        self._changed = asyncio.Event()

    def next_change(self) -> asyncio.Event:
        """Set at the next change of the leader's epoch."""
        return self._changed

    async def run(self) -> None:
        seen: int | None = None
        while True:
            current = self.leader()
            epoch = current.epoch if current is not None else None
            if epoch != seen:
                seen = epoch
                changed, self._changed = self._changed, asyncio.Event()
                changed.set()
            await asyncio.sleep(WATCH_POLL)


async def serve_watch(
    spu_id: int,
    changes: LeaderChanges,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    peer: str,
) -> str:
    """Tell the SPU of every newer leader until it closes; returns why the watch ended."""
    last_told = 0
    closed = asyncio.create_task(_until_closed(reader), name=f"spu-watch-{spu_id}-read")
    try:
        while not closed.done():
            changed = changes.next_change()
            notice = notice_due(changes.leader(), last_told)
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
            waiting = asyncio.create_task(changed.wait(), name=f"spu-watch-{spu_id}-change")
            try:
                await asyncio.wait({closed, waiting}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiting.cancel()
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
