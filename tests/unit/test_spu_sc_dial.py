"""``--sc ADDR@DIAL``: the SPU reaches the replica it knows as ADDR at DIAL, for the
addresses it was given and for redirects naming ADDR alike."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from ha_sc.model import Endpoint, SpuSpec
from ha_sc.protocol import FullSync, Message, NotLeader, encode_message
from ha_sc.spu import ControlState, NoLogs, ScLink, SpuSettings
from ha_sc.spu.sc_link import split_dial
from tests.net import free_addresses
from tests.waiting import eventually

ME = 5001


def test_split_dial() -> None:
    assert split_dial("127.0.0.1:9004") == ("127.0.0.1:9004", "127.0.0.1:9004")
    assert split_dial("127.0.0.1:9004@127.0.0.1:7000") == ("127.0.0.1:9004", "127.0.0.1:7000")


@contextlib.asynccontextmanager
async def scripted(answer: Message) -> AsyncIterator[tuple[str, list[int]]]:
    """An SC replica that answers every connection with ``answer`` and then stays."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.write(encode_message(answer))
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    try:
        yield f"{host}:{port}", connections
    finally:
        server.close()
        await server.wait_closed()


def spu_spec() -> SpuSpec:
    endpoint = Endpoint(host="127.0.0.1", port=9005)
    return SpuSpec(id=ME, public_endpoint=endpoint, private_endpoint=endpoint)


async def test_a_redirect_to_a_known_replica_is_dialled_through_its_dial_address(
    tmp_path: Path,
) -> None:
    leader_identity, standby_identity = free_addresses(2)  # nothing listens there
    sync = FullSync(epoch=2, spus=[spu_spec()], replicas=[], sc_members=[leader_identity])
    async with (
        scripted(sync) as (leader_dial, leader_connections),
        scripted(NotLeader(epoch=2, leader_private=leader_identity)) as (standby_dial, _),
    ):
        settings = SpuSettings(
            spu_id=ME,
            sc_addresses=(f"{standby_identity}@{standby_dial}", f"{leader_identity}@{leader_dial}"),
            data_dir=tmp_path,
            status_interval=0.05,
        )
        state = ControlState(ME)
        link = ScLink(settings, state, NoLogs())
        assert link.addresses == [standby_identity, leader_identity]
        task = asyncio.create_task(link.run(), name="sc-link")
        try:
            await eventually(
                lambda: state.sc_address == leader_identity, what="the spu on the leader"
            )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert leader_connections  # reached through its dial address, after the redirect
        assert link.addresses == [standby_identity, leader_identity]  # nothing new learned
