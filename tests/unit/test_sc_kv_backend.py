"""The etcd transaction limit a replica is started with reaches its KV client."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ha_sc.kv.etcd import EtcdKv
from ha_sc.sc.kv_backend import open_kv
from ha_sc.sc.settings import Backend, ScSettings


async def test_the_etcd_client_batches_up_to_the_configured_limit() -> None:
    kv = open_kv(ScSettings(backend=Backend.ETCD, etcd_max_txn_ops=64))
    try:
        assert isinstance(kv, EtcdKv) and kv.max_txn_ops == 64
    finally:
        await kv.close()
    default = open_kv(ScSettings(backend=Backend.ETCD))
    try:
        assert isinstance(default, EtcdKv) and default.max_txn_ops == 128
    finally:
        await default.close()


def test_a_limit_below_two_is_refused() -> None:
    with pytest.raises(ValidationError, match="etcd_max_txn_ops"):
        ScSettings(backend=Backend.ETCD, etcd_max_txn_ops=1)
