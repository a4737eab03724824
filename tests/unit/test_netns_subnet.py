"""Which private /24 a multi-host test network takes (``tests.netns.choose_subnet``)."""

from __future__ import annotations

import pytest

from tests.netns import SUBNETS, choose_subnet

HERE = """\
default via 192.0.2.1 dev eth0
192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2
local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1
broadcast 127.255.255.255 dev lo table local proto kernel scope link src 127.0.0.1
"""


def test_the_seed_picks_the_first_candidate() -> None:
    assert choose_subnet(HERE, 0) == f"10.231.{SUBNETS[0]}"
    assert choose_subnet(HERE, 5) == f"10.231.{SUBNETS[5]}"


def test_a_routed_24_is_skipped_in_any_table() -> None:
    k = SUBNETS[3]
    routes = HERE + f"10.231.{k}.0/24 dev hasc1n1 proto kernel scope link src 10.231.{k}.254\n"
    routes += f"local 10.231.{SUBNETS[4]}.254 dev x table local proto kernel scope host\n"
    assert choose_subnet(routes, 3) == f"10.231.{SUBNETS[5]}"


def test_a_covering_16_leaves_none_and_says_so() -> None:
    with pytest.raises(RuntimeError, match="every one is routed here"):
        choose_subnet(HERE + "10.231.0.0/16 via 192.0.2.9 dev eth0\n", 0)


def test_broad_routes_are_left_to_the_more_specific_test_network() -> None:
    routes = HERE + "10.0.0.0/8 via 192.0.2.7 dev eth0\n"
    assert choose_subnet(routes, 0) == f"10.231.{SUBNETS[0]}"


def test_the_search_wraps_around_from_the_seed() -> None:
    last = len(SUBNETS) - 1
    routes = HERE + f"10.231.{SUBNETS[last]}.0/24 dev eth1\n"
    assert choose_subnet(routes, last) == f"10.231.{SUBNETS[0]}"
