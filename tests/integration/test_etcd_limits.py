"""EtcdKv against a real etcd run with small limits: batch writes cut to fit the
server's operation and request limits, and a refusal that names the limit it hit
(``--max-txn-ops``, ``--max-request-bytes``, ``--quota-backend-bytes``) instead of
etcd's bare message."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ha_sc.kv.api import BatchOp, CreateOp, KeyExists, KvError, RevisionConflict, UpdateOp
from ha_sc.kv.etcd import EtcdKv
from tests.etcd_server import EtcdServer, running

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(60)]

SERVER_TXN_OPS = 16
SERVER_REQUEST_BYTES = 16 * 1024


@pytest.fixture(scope="module")
def small_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    small = EtcdServer(
        tmp_path_factory.mktemp("etcd-small"),
        flags=[f"--max-txn-ops={SERVER_TXN_OPS}", f"--max-request-bytes={SERVER_REQUEST_BYTES}"],
    )
    with running(small) as server:
        yield server


@pytest.fixture
async def kv_for(small_etcd: EtcdServer) -> AsyncIterator[list[EtcdKv]]:
    """Clients opened by a test on the small server, closed after it."""
    opened: list[EtcdKv] = []
    yield opened
    for kv in opened:
        await kv.close()


def creates(count: int, size: int, prefix: str) -> list[BatchOp]:
    return [CreateOp("partitions", f"{prefix}-{n}", b"x" * size) for n in range(count)]


async def test_a_batch_cut_to_the_servers_limits_is_written_whole(
    small_etcd: EtcdServer, kv_for: list[EtcdKv]
) -> None:
    kv = EtcdKv(
        [small_etcd.endpoint],
        root="/fits/",
        max_txn_ops=SERVER_TXN_OPS,
        max_request_bytes=SERVER_REQUEST_BYTES,
    )
    kv_for.append(kv)
    # 60 objects of 1 KB: more than one transaction by count and by bytes
    outcomes = await kv.write_batch(creates(60, 1000, "p"))
    assert all(isinstance(outcome, int) for outcome in outcomes)
    assert len((await kv.list("partitions")).entries) == 60


async def test_more_ops_than_the_server_allows_is_refused_by_name(
    small_etcd: EtcdServer, kv_for: list[EtcdKv]
) -> None:
    kv = EtcdKv([small_etcd.endpoint], root="/too-many/", max_txn_ops=4 * SERVER_TXN_OPS)
    kv_for.append(kv)
    with pytest.raises(KvError, match="--max-txn-ops"):
        await kv.write_batch(creates(2 * SERVER_TXN_OPS, 10, "p"))


async def test_an_object_larger_than_a_request_is_refused_by_name(
    small_etcd: EtcdServer, kv_for: list[EtcdKv]
) -> None:
    kv = EtcdKv([small_etcd.endpoint], root="/too-large/")
    kv_for.append(kv)
    with pytest.raises(KvError, match="--max-request-bytes"):
        await kv.create("topics", "huge", b"x" * (2 * SERVER_REQUEST_BYTES))


async def test_a_full_database_is_refused_by_name(tmp_path: Path) -> None:
    server = EtcdServer(tmp_path / "etcd", flags=["--quota-backend-bytes=1048576"])
    server.start()
    kv = EtcdKv([server.endpoint], root="/full/", max_request_bytes=SERVER_REQUEST_BYTES)
    try:
        with pytest.raises(KvError, match="--quota-backend-bytes"):
            for n in range(200):  # 200 x 100 KB: twenty times the quota
                await kv.write_batch(creates(10, 10_000, f"batch{n}"))
    finally:
        await kv.close()
        server.stop()


async def test_changed_objects_in_a_transaction_cost_one_more_transaction_not_one_each(
    small_etcd: EtcdServer, kv_for: list[EtcdKv]
) -> None:
    kv = EtcdKv([small_etcd.endpoint], root="/raced/", max_txn_ops=SERVER_TXN_OPS)
    kv_for.append(kv)
    first = await kv.write_batch(creates(10, 10, "p"))
    assert all(isinstance(r, int) for r in first)
    await kv.create("partitions", "p-12", b"taken")  # a create that will meet it
    changed = await kv.update("partitions", "p-3", b"moved", expected_revision=int(first[3]))
    ops: list[BatchOp] = [
        *(UpdateOp("partitions", f"p-{n}", b"new", int(first[n])) for n in range(10)),
        *(CreateOp("partitions", f"p-{n}", b"x") for n in range(10, 15)),
    ]
    outcomes = await kv.write_batch(ops)
    assert isinstance(outcomes[3], RevisionConflict) and outcomes[3].actual == changed
    assert isinstance(outcomes[12], KeyExists)
    written = [o for n, o in enumerate(outcomes) if n not in (3, 12)]
    # the 13 others went again as one transaction: one revision, not one each
    assert all(isinstance(o, int) for o in written) and len(set(written)) == 1
    listing = {e.key: e.value for e in (await kv.list("partitions")).entries}
    assert listing["p-3"] == b"moved" and listing["p-12"] == b"taken"
    assert listing["p-0"] == b"new" and listing["p-14"] == b"x"


async def test_a_client_told_more_ops_than_the_server_allows_falls_back_to_the_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a cluster whose etcd kept etcd's default limit, its replicas told 1024 (say, a
    # cluster up from before the launcher raised its etcd's limit)
    server = EtcdServer(tmp_path / "etcd", flags=["--max-txn-ops=128"])
    server.start()
    kv = EtcdKv([server.endpoint], root="/fallback/", max_txn_ops=1024)
    try:
        with caplog.at_level(logging.WARNING, logger="ha_sc.kv.etcd"):
            outcomes = await kv.write_batch(creates(300, 10, "p"))
        assert all(isinstance(o, int) for o in outcomes)
        assert len(set(outcomes)) == 3  # 128 + 128 + 44: transactions of the default size
        assert kv.max_txn_ops == 128
        assert any("--max-txn-ops" in r.getMessage() for r in caplog.records)
    finally:
        await kv.close()
        server.stop()
