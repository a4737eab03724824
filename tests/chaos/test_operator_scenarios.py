"""The operator-path scenarios of issue 13 are registered with the backends they apply
to, stay out of the quick suite, and the chaos cluster's ports avoid the kernel's
ephemeral range and are never handed out twice."""

from __future__ import annotations

import socket

import pytest

from chaos.cluster.ports import LOWEST_CHAOS_PORT, Ports, usable_ranges
from chaos.runner import plan, skip_reason
from chaos.scenarios.operator_cli import TOPIC, VERB_TIMEOUT, verb_steps
from chaos.scenarios.registry import SCENARIOS, quick_suite
from ha_sc.cluster.ports import PortRange

NEW = {
    "cli-frozen-standby": ("raft", "etcd"),
    "cli-frozen-leader": ("raft", "etcd"),
    "etcdctl-delete-topic": ("etcd",),
    "restart-loop": ("raft", "etcd"),
    "create-during-failover": ("raft", "etcd"),
    "create-during-isolation": ("raft", "etcd"),
}


def test_every_new_scenario_is_registered_for_its_backends() -> None:
    assert {name: SCENARIOS[name].backends for name in NEW} == NEW


def test_the_new_scenarios_stay_out_of_the_quick_suite() -> None:
    assert not {s.name for s in quick_suite()} & set(NEW)


def test_etcdctl_delete_says_it_does_not_apply_on_raft() -> None:
    reason = skip_reason(SCENARIOS["etcdctl-delete-topic"], "raft", None)
    assert reason is not None and "etcd only" in reason


def test_restart_loop_fault_phase_follows_duration() -> None:
    scenario = SCENARIOS["restart-loop"]
    assert plan(scenario, "raft", 40.0).fault < plan(scenario, "raft", None).fault


def test_cli_scenarios_let_every_verb_reach_its_own_timeout() -> None:
    # the bare start and each verb run one after another; the run must not be cut
    # before a hanging verb is ended and judged hung
    needed = (len(verb_steps(TOPIC)) + 1) * VERB_TIMEOUT
    for name in ("cli-frozen-standby", "cli-frozen-leader"):
        assert SCENARIOS[name].overrun >= needed
    assert SCENARIOS["sc-leader-sigkill"].overrun < needed


def test_usable_ranges_leave_out_the_ephemeral_range() -> None:
    ranges = usable_ranges(PortRange(32768, 60999))
    assert ranges == [PortRange(LOWEST_CHAOS_PORT, 32767), PortRange(61000, 65535)]
    assert usable_ranges(PortRange(1024, 65535)) == []


def test_ports_are_distinct_and_outside_the_ephemeral_range() -> None:
    ephemeral = PortRange(32768, 60999)
    ports = Ports(ephemeral=ephemeral)
    picked = []
    for _ in range(40):
        address = ports.address()
        ports.release([address])  # released ports are not handed out again either
        picked.append(int(address.rsplit(":", 1)[1]))
    ports.release()
    assert len(set(picked)) == len(picked)
    assert not [p for p in picked if p in ephemeral or p < LOWEST_CHAOS_PORT]


def test_a_held_port_keeps_out_another_allocator() -> None:
    """Two chaos clusters on one machine (a campaign beside a test run): a port one holds
    cannot be taken by the other, even by a bind with SO_REUSEADDR."""
    ports = Ports()
    address = ports.address()
    port = int(address.rsplit(":", 1)[1])
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        with pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
    finally:
        other.close()
        ports.release()
