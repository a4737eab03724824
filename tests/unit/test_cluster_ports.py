"""A local cluster's ports: one block per cluster, every member on its own ports, outside
the kernel's ephemeral range, chosen once; a second cluster gets another block; a port
taken by someone else is named with its member and its holder."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ha_sc.cluster.launcher import FIRST_SPU_ID, plan, spu_args
from ha_sc.cluster.layout import ClusterLayout
from ha_sc.cluster.port_check import Listener, listeners, taken_ports
from ha_sc.cluster.port_holders import parse_proc_net_tcp
from ha_sc.cluster.port_registry import ENV_REGISTRY, NoBlock, claim_block
from ha_sc.cluster.ports import (
    BLOCK_SIZE,
    BadBlock,
    PortRange,
    block,
    candidate_bases,
    check_base,
    choose_base,
    parse_ephemeral,
    read_ephemeral,
)

EPHEMERAL = PortRange(32768, 60999)


def every_port(layout: ClusterLayout) -> list[int]:
    addresses = [a for r in layout.replicas for a in (r.public, r.private, r.raft) if a]
    addresses += [a for s in layout.spus for a in (s.public, s.private, s.metrics)]
    if layout.etcd is not None:
        addresses += [*layout.etcd.endpoints, layout.etcd.peer]
    return [int(a.rsplit(":", 1)[1]) for a in addresses]


def made(base: int, *, replicas: int = 3, spus: int = 3, backend: str = "raft") -> ClusterLayout:
    return plan(
        None, replicas=replicas, spus=spus, backend=backend, etcd_endpoints=[], base_port=base
    )


def test_first_members_get_fluvios_ports() -> None:
    layout = made(9003)
    sc1, spu1 = layout.replicas[0], layout.spus[0]
    assert (sc1.public, sc1.private) == ("127.0.0.1:9003", "127.0.0.1:9004")
    assert (spu1.public, spu1.private) == ("127.0.0.1:9005", "127.0.0.1:9006")
    assert spu1.metrics == "127.0.0.1:9010"
    assert layout.base_port == 9003


@pytest.mark.parametrize("backend", ["raft", "etcd"])
@pytest.mark.parametrize("base", [9003, 20000, 61000])
def test_every_port_is_distinct_in_its_block_and_outside_the_ephemeral_range(
    backend: str, base: int
) -> None:
    layout = made(base, replicas=9, spus=50, backend=backend)
    ports = every_port(layout)
    assert len(ports) == len(set(ports))
    assert all(port in block(base) for port in ports)
    assert not any(port in EPHEMERAL for port in ports)
    if backend == "etcd":
        assert layout.etcd is not None and layout.etcd.managed


def test_recorded_members_keep_their_ports_and_counts() -> None:
    first = made(9003, replicas=3, spus=2)
    recorded = ClusterLayout.model_validate_json(first.model_dump_json())
    grown = plan(recorded, replicas=5, spus=None, backend="raft", etcd_endpoints=[])
    assert len(grown.spus) == 2  # --spus not given: as recorded
    assert grown.replicas[:3] == first.replicas
    assert len(set(every_port(grown))) == len(every_port(grown))
    again = plan(grown, replicas=None, spus=None, backend="raft", etcd_endpoints=[])
    assert (len(again.replicas), len(again.spus)) == (5, 2)


def test_a_removed_replicas_name_and_ports_are_not_reused() -> None:
    layout = made(9003, replicas=3, spus=0)
    removed = layout.replicas.pop(2)
    grown = plan(layout, replicas=3, spus=0, backend="raft", etcd_endpoints=[])
    assert grown.replicas[2].id == "sc-4"
    assert removed.raft not in {r.raft for r in grown.replicas}


def test_a_new_replica_takes_the_ports_of_its_own_name() -> None:
    layout = made(9003, replicas=3, spus=0)
    removed = layout.replicas.pop(1)
    grown = plan(layout, replicas=3, spus=0, backend="raft", etcd_endpoints=[])
    assert grown.replicas[2].id == "sc-4"
    assert grown.replicas[2].public == "127.0.0.1:9033"
    assert removed.public not in {r.public for r in grown.replicas}


def test_base_port_cannot_move_a_cluster_that_exists() -> None:
    layout = made(9003)
    with pytest.raises(ValueError, match="cannot move it"):
        plan(layout, replicas=None, spus=None, backend="raft", etcd_endpoints=[], base_port=9503)


@pytest.mark.parametrize(
    ("base", "why"),
    [
        (80, "must lie within"),
        (65300, "must lie within"),
        (32500, "ephemeral"),
        (40000, "ephemeral"),
    ],
)
def test_bad_base_ports_are_refused(base: int, why: str) -> None:
    with pytest.raises(BadBlock, match=why):
        check_base(base, EPHEMERAL)


def test_candidate_blocks_skip_the_ephemeral_range() -> None:
    narrow = PortRange(10000, 20000)
    bases = list(candidate_bases(narrow))
    assert bases[:2] == [9003, 20001]
    assert all(not block(b).overlaps(narrow) for b in bases)
    assert all(block(b).last <= 65535 for b in bases)


def test_a_second_cluster_gets_the_next_block_that_is_free() -> None:
    assert choose_base(EPHEMERAL, [], lambda base: True) == 9003
    assert choose_base(EPHEMERAL, [block(9003)], lambda base: True) == 9003 + BLOCK_SIZE
    busy = {9003 + BLOCK_SIZE}  # someone else listens there
    assert choose_base(EPHEMERAL, [block(9003)], lambda b: b not in busy) == 9003 + 2 * BLOCK_SIZE
    assert choose_base(EPHEMERAL, [], lambda base: False) is None


def test_the_ephemeral_range_is_read_or_defaulted(tmp_path: Path) -> None:
    assert parse_ephemeral("32768\t60999\n") == EPHEMERAL
    missing = tmp_path / "nope"
    assert read_ephemeral(missing) == EPHEMERAL
    odd = tmp_path / "range"
    odd.write_text("1024 2000\n")
    assert read_ephemeral(odd) == PortRange(1024, 2000)
    odd.write_text("garbage")
    assert read_ephemeral(odd) == EPHEMERAL


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    where = tmp_path / "registry"
    monkeypatch.setenv(ENV_REGISTRY, str(where))
    yield where


def test_the_registry_gives_two_clusters_two_blocks(registry: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    first = claim_block(a, None, lambda base: True)
    second = claim_block(b, None, lambda base: True)
    assert not block(first).overlaps(block(second))
    assert claim_block(a, None, lambda base: True) == first  # a directory keeps its block
    with pytest.raises(NoBlock, match=str(a.resolve())):
        claim_block(tmp_path, first - 10, lambda base: True)


def test_a_deleted_clusters_block_is_free_again(registry: Path, tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    taken = claim_block(gone, None, lambda base: True)
    gone.rmdir()
    assert claim_block(tmp_path / "new", None, lambda base: True) == taken


@pytest.fixture
def held_socket() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def test_a_taken_port_is_named_with_its_member_and_holder(held_socket: socket.socket) -> None:
    port = held_socket.getsockname()[1]
    wanted = [Listener(f"127.0.0.1:{port}", "public API of SC replica sc-2")]
    [taken] = taken_ports(wanted)
    assert taken.holder is not None and taken.holder.pid == os.getpid()
    said = str(taken)
    assert f"port {port}" in said and "sc-2" in said and f"pid {os.getpid()}" in said


def test_a_free_port_is_not_reported(held_socket: socket.socket) -> None:
    port = held_socket.getsockname()[1]
    held_socket.close()
    assert taken_ports([Listener(f"127.0.0.1:{port}", "x")]) == []


def test_every_member_not_running_is_checked() -> None:
    layout = made(9003, replicas=2, spus=1, backend="etcd")
    whats = [listener.what for listener in listeners(layout)]
    assert "client port of the local etcd" in whats and "peer port of the local etcd" in whats
    assert "private (SPU) port of SC replica sc-2" in whats
    assert f"public port of SPU {FIRST_SPU_ID}" in whats
    assert f"metrics port of SPU {FIRST_SPU_ID}" in whats
    assert len(whats) == 2 + 2 * 2 + 3


def test_spus_get_a_metrics_port_also_in_a_cluster_made_before_metrics(tmp_path: Path) -> None:
    layout = made(9003, replicas=1, spus=2)
    recorded = layout.model_copy(
        update={"spus": [s.model_copy(update={"metrics": ""}) for s in layout.spus]}
    )
    again = plan(recorded, replicas=None, spus=None, backend="raft", etcd_endpoints=[])
    assert [s.metrics for s in again.spus] == ["127.0.0.1:9010", "127.0.0.1:9020"]
    args = spu_args(again, again.spus[1], tmp_path)
    assert args[args.index("--metrics-address") + 1] == "127.0.0.1:9020"


def test_proc_net_tcp_lines_are_read() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        "   0: 0100007F:232B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0"
        "        0 123456 1 0000000000000000 100 0 0 10 0\n"
        "   1: garbage\n"
    )
    [entry] = parse_proc_net_tcp(table)
    assert (entry.port, entry.state, entry.inode) == (9003, "0A", 123456)


def test_a_cluster_made_before_blocks_keeps_its_ports_and_grows_into_a_block() -> None:
    legacy = plan(None, replicas=1, spus=1, backend="raft", etcd_endpoints=[])
    assert legacy.base_port is None
    old = legacy.replicas[0].model_copy()
    grown = plan(legacy, replicas=2, spus=None, backend="raft", etcd_endpoints=[], base_port=9503)
    assert grown.base_port == 9503
    assert grown.replicas[0] == old
    assert grown.replicas[1].public == "127.0.0.1:9513"  # sc-2's slot in the new block


def test_free_ports_lie_outside_the_ephemeral_range_and_are_never_handed_out_twice() -> None:
    from ha_sc.cluster.processes import free_port

    ephemeral = read_ephemeral()
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert not any(port in ephemeral for port in ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))  # free when handed out
