"""Closing a TLS stream whose peer has stopped answering: the close ends at once
instead of waiting out asyncio's TLS shutdown timeout (30 s) for a close_notify that
never comes (an SPU moving away from a frozen SC leader)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ha_sc.cluster.cert_authority import issue, make_ca
from ha_sc.protocol.tls import TlsFiles, client_context, server_context
from ha_sc.stream_close import close_stream

NEVER = 20.0
"""Longer than a close may take here, well under asyncio's 30 s TLS shutdown timeout."""


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    directory = tmp_path_factory.mktemp("ca")
    make_ca(directory)
    pair = issue(directory, directory, "sc-1", ("127.0.0.1",))
    return TlsFiles(ca=directory / "ca.crt", cert=pair.cert, key=pair.key)


@asynccontextmanager
async def frozen_peer_connection(
    files: TlsFiles,
) -> AsyncIterator[tuple[asyncio.StreamWriter, None]]:
    """A TLS connection to a peer that, once the handshake is done, does nothing more
    (as a SIGSTOPped process would): our close_notify is never answered. The peer is a
    thread with a blocking socket, so no event loop answers for it."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    thawed = threading.Event()

    def peer() -> None:
        conn, _ = listener.accept()
        with server_context(files).wrap_socket(conn, server_side=True):
            thawed.wait(NEVER * 2)  # frozen: reads nothing, answers nothing

    thread = threading.Thread(target=peer, name="frozen-peer", daemon=True)
    thread.start()
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(TlsFiles(ca=files.ca))
        )
        yield writer, None
    finally:
        thawed.set()
        listener.close()
        await asyncio.to_thread(thread.join, NEVER)


async def test_a_close_does_not_wait_for_a_frozen_tls_peer(tls_files: TlsFiles) -> None:
    async with frozen_peer_connection(tls_files) as (writer, _):
        async with asyncio.timeout(NEVER):
            await close_stream(writer, grace=0.2)
        assert writer.transport.is_closing()


async def test_a_cancelled_task_drops_the_connection_without_waiting(tls_files: TlsFiles) -> None:
    async with frozen_peer_connection(tls_files) as (writer, _):
        closed = asyncio.Event()

        async def session() -> None:
            try:
                await asyncio.sleep(NEVER)
            finally:
                await close_stream(writer, grace=NEVER)
                closed.set()

        task = asyncio.create_task(session())
        await asyncio.sleep(0.05)
        task.cancel()
        async with asyncio.timeout(NEVER / 2):
            await asyncio.gather(task, return_exceptions=True)
        assert closed.is_set() and writer.transport.is_closing()


async def test_a_plain_close_to_an_answering_peer_completes(tmp_path: Path) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"bye")
        await close_stream(writer)
        assert writer.transport.is_closing()
    finally:
        server.close()
