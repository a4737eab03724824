"""How an etcd batch is cut into transactions: at the size limit, at a key seen again,
and around each delete (which cascades, so it is written on its own)."""

from __future__ import annotations

from ha_sc.kv.api import BatchOp, CreateOp, DeleteOp, UpdateOp
from ha_sc.kv.etcd import txn_chunks
from ha_sc.kv.etcd_limits import MANAGED_SERVER, OP_OVERHEAD, ServerLimits, refusal


def keys(ops: list[BatchOp], size: int) -> list[list[str] | str]:
    return [
        f"delete {step.key}" if isinstance(step, DeleteOp) else [op.key for op in step]
        for step in txn_chunks(ops, size)
    ]


def test_cut_at_the_size_limit() -> None:
    ops: list[BatchOp] = [CreateOp("p", f"k{n}", b"") for n in range(7)]
    assert keys(ops, 3) == [["k0", "k1", "k2"], ["k3", "k4", "k5"], ["k6"]]
    assert keys([], 3) == []


def test_a_key_again_starts_a_new_transaction() -> None:
    ops: list[BatchOp] = [
        CreateOp("p", "a", b""),
        CreateOp("p", "b", b""),
        UpdateOp("p", "a", b"", expected_revision=4),
        CreateOp("t", "a", b""),  # another kind: another key
    ]
    assert keys(ops, 10) == [["a", "b"], ["a", "a"]]


def test_deletes_stand_alone_in_order() -> None:
    ops: list[BatchOp] = [
        CreateOp("p", "a", b""),
        DeleteOp("p", "x"),
        DeleteOp("p", "y"),
        CreateOp("p", "b", b""),
    ]
    assert keys(ops, 10) == [["a"], "delete x", "delete y", ["b"]]


def test_cut_where_the_bytes_would_pass_the_request_limit() -> None:
    value = b"x" * 1000
    ops: list[BatchOp] = [CreateOp("p", f"k{n}", value) for n in range(5)]
    # each op costs its key twice (with the root), its value and the per-op overhead
    cost = 2 * len("/root/p/k0") + len(value) + OP_OVERHEAD
    steps = list(txn_chunks(ops, 100, 2 * cost, len("/root/")))
    assert [[op.key for op in step] for step in steps if isinstance(step, list)] == [
        ["k0", "k1"],
        ["k2", "k3"],
        ["k4"],
    ]


def test_an_op_larger_than_the_limit_goes_alone() -> None:
    ops: list[BatchOp] = [
        CreateOp("p", "small", b""),
        CreateOp("p", "huge", b"x" * 5000),
        CreateOp("p", "after", b""),
    ]
    steps = [
        [op.key for op in step] for step in txn_chunks(ops, 100, 1000) if isinstance(step, list)
    ]
    assert steps == [["small"], ["huge"], ["after"]]


def test_a_100k_store_topic_goes_in_one_transaction_under_the_managed_limits() -> None:
    # 1000 partitions of about 240 bytes each, as the controllers write a topic's
    value = b"v" * 240
    ops: list[BatchOp] = [CreateOp("partitions", f"load-7-{n}", value) for n in range(1000)]
    limits = MANAGED_SERVER
    steps = list(txn_chunks(ops, limits.max_txn_ops - 1, limits.txn_bytes, len("/ha-sc/")))
    assert len(steps) == 1


def test_etcd_refusals_are_named_by_their_limit() -> None:
    limits = ServerLimits(max_txn_ops=64)
    assert "--max-txn-ops" in str(refusal("etcdserver: too many operations in txn request", limits))
    assert "--max-request-bytes" in str(refusal("etcdserver: request is too large", limits))
    assert "--quota-backend-bytes" in str(
        refusal("etcdserver: mvcc: database space exceeded", limits)
    )
    assert refusal("etcdserver: key not found", limits) is None
