"""`cluster up --backend etcd`: the etcd it starts itself runs with the limits sized for a
100k-partition store, and its replicas are told the operation limit; replicas of an etcd
given with --etcd-endpoint are told nothing (the operator's servers may keep etcd's
defaults)."""

from __future__ import annotations

from pathlib import Path

from ha_sc.cluster.launcher import etcd_args, plan, replica_args
from ha_sc.cluster.layout import ClusterLayout
from ha_sc.kv.etcd_limits import MANAGED_SERVER


def etcd_plan(endpoints: list[str]) -> ClusterLayout:
    return plan(None, replicas=2, spus=0, backend="etcd", etcd_endpoints=endpoints, sc_options=None)


def value_of(args: list[str], flag: str) -> str | None:
    for n, arg in enumerate(args):
        if arg == flag:
            return args[n + 1]
        if arg.startswith(f"{flag}="):
            return arg.partition("=")[2]
    return None


def test_the_launchers_etcd_and_its_replicas_agree_on_the_transaction_limit(
    tmp_path: Path,
) -> None:
    layout = etcd_plan([])
    assert layout.etcd is not None and layout.etcd.managed
    server = etcd_args(layout.etcd.endpoints[0], "127.0.0.1:1", tmp_path)
    assert value_of(server, "--max-txn-ops") == str(MANAGED_SERVER.max_txn_ops)
    assert value_of(server, "--quota-backend-bytes") == str(MANAGED_SERVER.quota_backend_bytes)
    assert value_of(server, "--auto-compaction-mode") == "periodic"
    for replica in layout.replicas:
        args = replica_args(layout, replica, tmp_path)
        assert value_of(args, "--etcd-max-txn-ops") == str(MANAGED_SERVER.max_txn_ops)


def test_replicas_of_an_etcd_of_ones_own_keep_the_default_limit(tmp_path: Path) -> None:
    layout = etcd_plan(["127.0.0.1:2379"])
    for replica in layout.replicas:
        assert "--etcd-max-txn-ops" not in replica_args(layout, replica, tmp_path)
