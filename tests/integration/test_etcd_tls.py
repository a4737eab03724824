"""The etcd backend over TLS: the KV and the election against a real etcd that wants
client certificates, and clients that cannot prove themselves refused."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from election.etcd import EtcdCandidate
from election.etcd_access import EtcdAccess
from ha_sc.kv.api import KvError, KvUnavailable
from ha_sc.kv.etcd import EtcdKv
from tests.etcd_server import EtcdServer, EtcdTls
from tests.net import free_port
from tests.waiting import eventually

pytestmark = pytest.mark.etcd

REFUSAL_TIMEOUT = 2.0
"""Request timeout of a client that is expected to be refused."""


@pytest.fixture(scope="module")
def tls_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """One etcd with https client and peer URLs that refuses clients without a certificate."""
    base = tmp_path_factory.mktemp("etcd-tls")
    server = EtcdServer(base / "etcd", tls=EtcdTls.made_in(base / "pki"))
    server.start()
    try:
        yield server
    finally:
        server.destroy()


def access_of(server: EtcdServer, *, client_cert: bool = True) -> EtcdAccess:
    assert server.tls is not None
    return server.tls.access([server.url], client_cert=client_cert)


def kv_for(access: EtcdAccess, *, request_timeout: float = 5.0) -> EtcdKv:
    return EtcdKv(
        list(access.endpoints),
        root=f"/t-{uuid.uuid4().hex[:8]}/",
        request_timeout=request_timeout,
        credentials=access.load(),
    )


async def test_kv_writes_reads_and_watches_over_tls_with_a_client_certificate(
    tls_etcd: EtcdServer,
) -> None:
    kv = kv_for(access_of(tls_etcd))
    try:
        revision = await kv.create("topic", "orders", b"spec")
        watch = kv.watch("topic", revision + 1)
        await kv.update("topic", "orders", b"spec-2", expected_revision=revision)
        event = await asyncio.wait_for(anext(watch), timeout=10)
        entry = await kv.get("topic", "orders")
        assert entry is not None and entry.value == b"spec-2"
        assert (event.key, event.value) == ("orders", b"spec-2")
        await watch.aclose()  # type: ignore[attr-defined]
    finally:
        await kv.close()


async def test_a_candidate_wins_the_election_over_tls(
    tls_etcd: EtcdServer, caplog: pytest.LogCaptureFixture
) -> None:
    await wins_an_election(access_of(tls_etcd), caplog)


async def test_a_candidate_wins_the_election_as_an_etcd_user(
    auth_etcd: EtcdServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await wins_an_election(password_access(auth_etcd, tmp_path, PASSWORD), caplog)


REFUSED = re.compile(r"user name is empty|permission denied|auth token|authentication failed")


async def wins_an_election(access: EtcdAccess, caplog: pytest.LogCaptureFixture) -> None:
    """A candidate on ``access`` wins, and no call of its (lease keep-alive and watch
    streams included) is refused for want of a token or certificate."""
    caplog.set_level(logging.WARNING, logger="election")
    candidate = EtcdCandidate(
        list(access.endpoints),
        election="sc",
        name="sc-1",
        address="127.0.0.1:9004",
        root=f"/t-{uuid.uuid4().hex[:8]}/",
        credentials=access.load(),
    )
    task = asyncio.create_task(candidate.run(), name="run-sc-1")
    try:
        term = await eventually(lambda: candidate.leadership.held, timeout=30, what="a term")
        assert term.epoch > 0
        await asyncio.sleep(candidate.timing.lease_ttl * 1.5)  # renewals and watches ran
        refusals = [r.getMessage() for r in caplog.records if REFUSED.search(r.getMessage())]
        assert not refusals  # a slow answer under load is no refusal
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await candidate.close()


async def test_a_client_without_a_certificate_is_refused(tls_etcd: EtcdServer) -> None:
    kv = kv_for(access_of(tls_etcd, client_cert=False), request_timeout=REFUSAL_TIMEOUT)
    try:
        with pytest.raises(KvUnavailable, match=r"no connection to .*serves"):
            await kv.get("topic", "orders")
    finally:
        await kv.close()


async def test_a_client_trusting_another_ca_is_refused(
    tls_etcd: EtcdServer, tmp_path: Path
) -> None:
    other = EtcdTls.made_in(tmp_path / "other-pki")
    access = other.access([tls_etcd.url])  # a certificate and CA of another cluster
    kv = kv_for(access, request_timeout=REFUSAL_TIMEOUT)
    try:
        with pytest.raises(KvUnavailable, match=r"no connection to .*--etcd-ca"):
            await kv.get("topic", "orders")
    finally:
        await kv.close()


async def test_a_client_without_the_ca_is_refused(tls_etcd: EtcdServer) -> None:
    plain = EtcdKv([tls_etcd.endpoint], root="/t-plain/", request_timeout=REFUSAL_TIMEOUT)
    try:
        with pytest.raises(KvUnavailable, match=r"no connection to .*serves"):
            await plain.get("topic", "orders")
    finally:
        await plain.close()


def test_an_https_endpoint_without_a_ca_is_refused() -> None:
    with pytest.raises(ValueError, match="https but no etcd CA"):
        EtcdAccess(endpoints=("https://127.0.0.1:2379",))


def test_a_missing_certificate_file_is_named(tmp_path: Path) -> None:
    access = EtcdAccess(endpoints=("127.0.0.1:2379",), ca_file=tmp_path / "ca.pem")
    with pytest.raises(ValueError, match=r"etcd CA .*ca\.pem: cannot read it"):
        access.load()


PASSWORD = "etcd-root-password-for-tests"


@pytest.fixture
def auth_etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    """A TLS etcd (no client certificates) with etcd auth on: user root, ``PASSWORD``."""
    server = EtcdServer(
        tmp_path / "etcd", tls=EtcdTls.made_in(tmp_path / "pki", client_cert_auth=False)
    )
    server.start()
    try:
        server.etcdctl("user", "add", "root", f"--new-user-password={PASSWORD}")
        server.etcdctl("auth", "enable")
        yield server
    finally:
        server.destroy()


def password_access(server: EtcdServer, directory: Path, password: str) -> EtcdAccess:
    password_file = directory / "etcd-password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    assert server.tls is not None
    return EtcdAccess(
        endpoints=(server.url,), ca_file=server.tls.ca, user="root", password_file=password_file
    )


async def test_etcd_auth_admits_the_user_and_again_after_etcd_restarts(
    auth_etcd: EtcdServer, tmp_path: Path
) -> None:
    kv = kv_for(password_access(auth_etcd, tmp_path, PASSWORD))
    try:
        revision = await kv.create("topic", "orders", b"spec")
        watch = kv.watch("topic", revision)  # a stream call carries the token too
        event = await asyncio.wait_for(anext(watch), timeout=10)
        assert (event.key, event.value) == ("orders", b"spec")
        await watch.aclose()  # type: ignore[attr-defined]
        await asyncio.to_thread(auth_etcd.restart)  # the member forgets every token

        async def read() -> bytes | None:
            try:
                entry = await kv.get("topic", "orders")
            except KvError:
                return None
            return None if entry is None else entry.value

        assert await eventually(read, timeout=15, what="a read after the restart") == b"spec"
    finally:
        await kv.close()


async def test_etcd_auth_refuses_a_wrong_password_and_no_user(
    auth_etcd: EtcdServer, tmp_path: Path
) -> None:
    wrong = kv_for(password_access(auth_etcd, tmp_path, "not-the-password"))
    assert auth_etcd.tls is not None
    anonymous = kv_for(auth_etcd.tls.access([auth_etcd.url], client_cert=False))
    try:
        with pytest.raises(KvError, match="authentication failed"):
            await wrong.get("topic", "orders")
        with pytest.raises(KvError, match="user name is empty"):
            await anonymous.get("topic", "orders")
    finally:
        await wrong.close()
        await anonymous.close()


def test_the_password_is_never_in_a_repr(tmp_path: Path) -> None:
    password_file = tmp_path / "etcd-password"
    password_file.write_text(PASSWORD)
    password_file.chmod(0o600)
    credentials = EtcdAccess(user="root", password_file=password_file).load()
    assert credentials.password == PASSWORD
    assert PASSWORD not in repr(credentials)


def test_a_password_file_others_may_read_is_refused(tmp_path: Path) -> None:
    password_file = tmp_path / "etcd-password"
    password_file.write_text(PASSWORD)
    password_file.chmod(0o644)
    with pytest.raises(ValueError, match="other users may read it"):
        EtcdAccess(user="root", password_file=password_file).load()


async def test_logging_in_to_a_member_that_is_down_costs_no_more_than_a_call(
    auth_etcd: EtcdServer, tmp_path: Path
) -> None:
    """The first endpoint is down: its Authenticate gives up at the read's own per-member
    deadline, and the read is answered by the next member within its request timeout."""
    access = password_access(auth_etcd, tmp_path, PASSWORD)
    writer = kv_for(access)
    down = f"https://127.0.0.1:{free_port()}"
    reader = EtcdKv(
        [down, *access.endpoints],
        root=writer.root,
        request_timeout=2 * REFUSAL_TIMEOUT,
        credentials=access.load(),
    )
    try:
        await writer.create("topic", "orders", b"spec")
        entry = await reader.get("topic", "orders")
        assert entry is not None and entry.value == b"spec"
    finally:
        await reader.close()
        await writer.close()
