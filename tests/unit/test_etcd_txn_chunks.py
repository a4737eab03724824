"""How an etcd batch is cut into transactions: at the size limit, at a key seen again,
and around each delete (which cascades, so it is written on its own)."""

from __future__ import annotations

from ha_sc.kv.api import BatchOp, CreateOp, DeleteOp, UpdateOp
from ha_sc.kv.etcd import txn_chunks


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
