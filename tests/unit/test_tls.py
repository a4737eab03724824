"""TLS contexts and the cluster CA: real handshakes over 127.0.0.1 between contexts made
from certificates ``ha-sc cert`` writes; a TLS data port that plain or stalled clients
cost nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ha_sc.cli.main import cli
from ha_sc.cli.output import plain_hint
from ha_sc.client import Unreachable
from ha_sc.client.discovery import find_tls_ca
from ha_sc.cluster.cert_authority import CertificateError, KeyPair, issue, make_ca
from ha_sc.protocol import FullSync, Refused, Register, encode_message, parse_address
from ha_sc.protocol.data import (
    FetchResponse,
    ReplicaFetchRequest,
    ReplicaFetchResponse,
    encode_frame,
)
from ha_sc.protocol.tls import TlsError, TlsFiles, client_context, peer_spu_id, server_context
from ha_sc.sc.spu_server import SpuServer
from ha_sc.spu.dataplane.follower_identity import follower_refusal
from ha_sc.spu.dataplane.listener import DataPort
from tests.data_client import RawDataClient
from tests.unit.test_dataplane_limits import (
    ANSWER_BYTES,
    FakeDispatch,
    closed_by_server,
    fetch,
    limits,
    port,
)
from tests.unit.test_spu_server import ME, Client, View, view
from tests.waiting import eventually

__all__ = ["view"]  # the fixture: an SC replica's view with SPU 5001 known


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ca")
    make_ca(directory)
    issue(directory, directory, "sc-1", ("127.0.0.1", "sc-1.example"))
    issue(directory, directory, "spu-5001", ("127.0.0.1",))
    issue(directory, directory, "spu-5002", ("127.0.0.1",))
    issue(directory, directory, "elsewhere", ("10.9.9.9", "elsewhere.example"))
    return directory


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("other-ca")
    make_ca(directory)
    issue(directory, directory, "sc-1", ("127.0.0.1",))
    return directory


def member(directory: Path, name: str, *, ca: Path | None = None, **more: bool) -> TlsFiles:
    return TlsFiles(
        ca=(ca or directory) / "ca.crt",
        cert=directory / f"{name}.crt",
        key=directory / f"{name}.key",
        **more,
    )


Accepted = list[object]
"""The peer certificate of each connection the server's handler was given."""


@contextlib.asynccontextmanager
async def echo_server(context: ssl.SSLContext) -> AsyncIterator[tuple[str, Accepted]]:
    accepted: Accepted = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("peercert"))
        with contextlib.suppress(ConnectionError, OSError):
            writer.write(await reader.read(100))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"127.0.0.1:{port}", accepted


async def exchange(address: str, context: ssl.SSLContext) -> bytes:
    host, port = parse_address(address)
    reader, writer = await asyncio.open_connection(host, port, ssl=context)
    try:
        writer.write(b"ping")
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read(100)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def test_a_client_with_the_cluster_ca_reaches_a_member_at_an_address_it_names(
    ca: Path,
) -> None:
    async with echo_server(server_context(member(ca, "sc-1"))) as (address, _):
        assert await exchange(address, client_context(TlsFiles(ca=ca / "ca.crt"))) == b"ping"


async def test_a_server_signed_by_another_ca_is_refused(ca: Path, other_ca: Path) -> None:
    async with echo_server(server_context(member(other_ca, "sc-1"))) as (address, accepted):
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            await exchange(address, client_context(TlsFiles(ca=ca / "ca.crt")))
    assert accepted == []


async def test_a_certificate_for_another_address_is_refused(ca: Path) -> None:
    async with echo_server(server_context(member(ca, "elsewhere"))) as (address, _):
        with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
            await exchange(address, client_context(TlsFiles(ca=ca / "ca.crt")))


async def test_with_client_auth_a_client_without_a_certificate_gets_nothing(ca: Path) -> None:
    context = server_context(member(ca, "sc-1", client_auth=True))
    async with echo_server(context) as (address, accepted):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            answer = await exchange(address, client_context(TlsFiles(ca=ca / "ca.crt")))
            assert answer == b""  # TLS 1.3: the refusal may arrive as the end of the stream
            raise ConnectionError("closed")
        assert accepted == []


async def test_with_client_auth_the_server_sees_the_spu_id_its_peer_proves(ca: Path) -> None:
    context = server_context(member(ca, "sc-1", client_auth=True))
    async with echo_server(context) as (address, accepted):
        assert await exchange(address, client_context(member(ca, "spu-5001"))) == b"ping"
        assert await exchange(address, client_context(member(ca, "sc-1"))) == b"ping"
    assert [peer_spu_id(cert) for cert in accepted] == [5001, None]


def test_a_missing_file_is_named(ca: Path, tmp_path: Path) -> None:
    files = TlsFiles(cert=tmp_path / "absent.crt", key=ca / "sc-1.key")
    with pytest.raises(TlsError, match=r"tls certificate .*absent.crt: cannot read it"):
        server_context(files)
    with pytest.raises(TlsError, match=r"tls CA .*nope: cannot read it"):
        client_context(TlsFiles(ca=tmp_path / "nope"))


def test_a_key_of_another_certificate_is_refused(ca: Path) -> None:
    files = TlsFiles(cert=ca / "sc-1.crt", key=ca / "spu-5001.key")
    with pytest.raises(TlsError, match="does not match the certificate"):
        server_context(files)


def test_a_certificate_without_its_key_or_client_auth_without_a_ca_is_refused(ca: Path) -> None:
    with pytest.raises(ValueError, match="give both or neither"):
        TlsFiles(cert=ca / "sc-1.crt")
    with pytest.raises(ValueError, match="only with a CA"):
        TlsFiles(cert=ca / "sc-1.crt", key=ca / "sc-1.key", client_auth=True)


def test_keys_are_written_for_their_owner_only(ca: Path) -> None:
    for key in ("ca.key", "sc-1.key", "spu-5001.key"):
        assert stat.S_IMODE((ca / key).stat().st_mode) == 0o600


def test_issue_refuses_a_certificate_without_hosts_or_ca(tmp_path: Path, ca: Path) -> None:
    with pytest.raises(CertificateError, match="at least one host"):
        issue(ca, tmp_path, "sc-2", ())
    with pytest.raises(CertificateError, match="cannot load"):
        issue(tmp_path, tmp_path, "sc-2", ("127.0.0.1",))


def test_the_cert_command_makes_a_ca_and_issues_from_it(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(cli, ["cert", "ca", "--out", str(tmp_path)])
    assert made.exit_code == 0, made.output
    issued = runner.invoke(
        cli,
        ["cert", "issue", "--ca", str(tmp_path), "--name", "spu-7", "--host", "127.0.0.1"],
    )
    assert issued.exit_code == 0, issued.output
    pair = KeyPair(tmp_path / "spu-7.crt", tmp_path / "spu-7.key")
    server_context(TlsFiles(ca=tmp_path / "ca.crt", cert=pair.cert, key=pair.key))


def tls_port(
    dispatch: FakeDispatch,
    context: ssl.SSLContext,
    frame_timeout: float = 30.0,
    *,
    check_followers: bool = False,
    per_peer: int = 100,
) -> contextlib.AbstractAsyncContextManager[DataPort]:
    port_limits = limits(first_frame_timeout=frame_timeout, max_connections_per_peer=per_peer)
    return port(
        dispatch,
        port_limits,
        in_order=not check_followers,
        tls=context,
        check_followers=check_followers,
    )


async def test_a_tls_data_port_serves_a_client_with_the_ca(ca: Path) -> None:
    dispatch = FakeDispatch()
    async with (
        tls_port(dispatch, server_context(member(ca, "sc-1"))) as data_port,
        RawDataClient(data_port.address, tls=client_context(TlsFiles(ca=ca / "ca.crt"))) as c,
    ):
        response, body = await c.request(fetch(c.next_id()))
        assert isinstance(response, FetchResponse) and len(body) == ANSWER_BYTES


async def test_a_plain_client_on_a_tls_data_port_is_closed_and_costs_it_nothing(
    ca: Path,
) -> None:
    dispatch = FakeDispatch()
    async with tls_port(dispatch, server_context(member(ca, "sc-1"))) as data_port:
        plain_frame = b"".join(encode_frame(fetch(1)))
        assert await closed_by_server(data_port.address, plain_frame, timeout=10)
        assert dispatch.requests == 0
        assert data_port.admission.total == 0
        tls = client_context(TlsFiles(ca=ca / "ca.crt"))
        async with RawDataClient(data_port.address, tls=tls) as client:
            response, _ = await client.request(fetch(client.next_id()))
            assert isinstance(response, FetchResponse)


async def test_a_stalled_handshake_is_closed_after_the_frame_timeout(ca: Path) -> None:
    async with tls_port(FakeDispatch(), server_context(member(ca, "sc-1")), 0.3) as data_port:
        assert await closed_by_server(data_port.address, b"", timeout=10)
        await eventually(lambda: data_port.admission.total == 0, what="nothing held")


async def test_connections_in_their_handshake_count_against_the_per_peer_cap(ca: Path) -> None:
    context = server_context(member(ca, "sc-1"))
    async with tls_port(FakeDispatch(), context, per_peer=2) as data_port:
        host, port_number = parse_address(data_port.address)
        stalled = [await asyncio.open_connection(host, port_number) for _ in range(2)]
        try:
            await eventually(lambda: data_port.admission.total == 2, what="both counted")
            assert await closed_by_server(data_port.address, b"", timeout=10)
        finally:
            for _, writer in stalled:
                writer.close()
        await eventually(lambda: data_port.admission.total == 0, what="their slots back")
        tls = client_context(TlsFiles(ca=ca / "ca.crt"))
        async with RawDataClient(data_port.address, tls=tls) as client:
            response, _ = await client.request(fetch(client.next_id()))
            assert isinstance(response, FetchResponse)


def replica_fetch(request_id: int, follower: int) -> ReplicaFetchRequest:
    return ReplicaFetchRequest(id=request_id, topic="t", partition=0, follower=follower, offset=0)


async def test_a_replica_fetch_is_served_only_for_the_spu_the_certificate_names(
    ca: Path,
) -> None:
    dispatch = FakeDispatch()
    context = server_context(member(ca, "sc-1", client_auth=True))
    async with tls_port(dispatch, context, check_followers=True) as data_port:
        async with RawDataClient(
            data_port.address, tls=client_context(member(ca, "spu-5001"))
        ) as c:
            served, _ = await c.request(replica_fetch(c.next_id(), 5001))
            assert served.error is None
            assert dispatch.requests == 1
            forged, _ = await c.request(replica_fetch(c.next_id(), 5002))
            assert isinstance(forged, ReplicaFetchResponse) and forged.error is not None
            assert "its certificate is spu 5001's" in forged.error.message
            assert dispatch.requests == 1
        async with RawDataClient(data_port.address, tls=client_context(member(ca, "sc-1"))) as c:
            nameless, _ = await c.request(replica_fetch(c.next_id(), 5001))
            assert nameless.error is not None and "names no SPU" in nameless.error.message
            assert dispatch.requests == 1


def test_follower_refusal_concerns_replica_fetches_only() -> None:
    assert follower_refusal(fetch(1), None) is None
    assert follower_refusal(replica_fetch(1, 5001), 5001) is None
    assert follower_refusal(replica_fetch(1, 5001), 5002) is not None


@contextlib.asynccontextmanager
async def tls_spu_server(view: View, context: ssl.SSLContext) -> AsyncIterator[SpuServer]:
    server = SpuServer(view, "127.0.0.1:0", health_timeout=0.4, keepalive_interval=0.1, tls=context)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_the_sc_private_port_serves_an_spu_over_tls_and_drops_plain_or_stalled_peers(
    view: View, ca: Path
) -> None:
    view.win()
    context = server_context(member(ca, "sc-1", client_auth=True))
    async with tls_spu_server(view, context) as server:
        host, port = parse_address(server.address)
        spu = Client(
            *await asyncio.open_connection(host, port, ssl=client_context(member(ca, "spu-5001")))
        )
        try:
            await spu.send(Register(spu_id=ME))
            assert isinstance(await spu.receive(), FullSync)
        finally:
            await spu.close()
        plain = encode_message(Register(spu_id=ME))
        assert await closed_by_server(server.address, plain, timeout=10)
        assert await closed_by_server(server.address, b"", timeout=10)  # no handshake
        assert server.connected_ids() == set()


def test_the_ca_a_client_uses_is_named_else_recorded_else_none(tmp_path: Path) -> None:
    env = {"HA_SC_DIR": str(tmp_path)}
    assert find_tls_ca(env) is None
    (tmp_path / "cluster.json").write_text(json.dumps({"tls_ca": "/recorded/ca.crt"}))
    assert find_tls_ca(env) == Path("/recorded/ca.crt")
    assert find_tls_ca({**env, "HA_SC_TLS_CA": "/named/ca.crt"}) == Path("/named/ca.crt")


@pytest.mark.parametrize(
    ("name", "why"),
    [("spu-5002", "its certificate is spu 5002's"), ("sc-1", "its certificate names no SPU")],
)
async def test_with_client_auth_an_spu_registers_only_as_the_spu_its_certificate_names(
    view: View, ca: Path, name: str, why: str
) -> None:
    view.win()
    context = server_context(member(ca, "sc-1", client_auth=True))
    async with tls_spu_server(view, context) as server:
        host, port = parse_address(server.address)
        tls = client_context(member(ca, name))
        impostor = Client(*await asyncio.open_connection(host, port, ssl=tls))
        try:
            await impostor.send(Register(spu_id=ME))
            answer = await impostor.receive()
            assert isinstance(answer, Refused) and why in answer.reason
        finally:
            await impostor.close()
        assert server.connected_ids() == set()


def test_a_plain_call_a_tls_port_hung_up_on_suggests_the_ca(ca: Path) -> None:
    hung_up = Unreachable("no SC replica could be reached: http://a:1: Server disconnected")
    assert "--tls-ca" in plain_hint(hung_up, None)
    assert plain_hint(hung_up, client_context(TlsFiles(ca=ca / "ca.crt"))) == ""
    assert plain_hint(Unreachable("no SC replica could be reached: refused"), None) == ""
