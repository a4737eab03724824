"""Which Raft addresses a replica accepts without --allow-unauthenticated-raft."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from election.raft_node import is_loopback_address
from ha_sc.sc.settings import ScSettings


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:9010", True),
        ("127.0.0.2:9010", True),
        ("[::1]:9010", True),
        ("localhost:9010", True),
        ("0.0.0.0:9010", False),
        ("10.1.2.3:9010", False),
        ("[fd00::2]:9010", False),
        ("no-such-host.invalid:9010", False),
    ],
)
def test_is_loopback_address(address: str, loopback: bool) -> None:
    assert is_loopback_address(address) is loopback


def test_a_non_loopback_raft_address_is_refused_unless_allowed() -> None:
    with pytest.raises(ValidationError, match="is not loopback"):
        ScSettings(raft_address="10.1.2.3:9010")
    allowed = ScSettings(raft_address="10.1.2.3:9010", allow_unauthenticated_raft=True)
    assert allowed.raft_address == "10.1.2.3:9010"


def test_the_raft_address_is_not_checked_on_etcd() -> None:
    ScSettings(backend="etcd", raft_address="10.1.2.3:9010")
