"""Replica fetches between real SPU processes are tied to the follower's identity: a
3-SPU cluster with tokens (as ``cluster up`` starts it) replicates with acks=all, and a
connection from this process that claims to be a follower, without its key, is refused
and cannot move the high watermark."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from ha_sc.protocol.data import (
    Acks,
    ErrorCode,
    ReplicaChallenge,
    ReplicaFetchRequest,
    ReplicaHello,
    ReplicaProof,
    ReplicaProven,
)
from ha_sc.protocol.fetch_proof import fetch_key, fetch_proof
from tests.data_client import RawDataClient, records_batch
from tests.sc_processes import LocalCluster, computed, eventually

pytestmark = [pytest.mark.raft, pytest.mark.slow]

TOPIC = "guarded"
WRONG_KEY = fetch_key("not-the-token-of-any-spu-at-all")


async def high_watermark(address: str) -> int:
    async with RawDataClient(address) as client:
        response, _ = await client.fetch(TOPIC, 0, 0)
    assert response.error is None, response.error
    return response.hw


async def hw_is(address: str, expected: int) -> bool:
    return await high_watermark(address) == expected


async def test_a_forged_follower_is_refused_and_does_not_move_the_high_watermark(
    tmp_path: Path,
) -> None:
    # a frozen follower stays in sync for 300 s: only its fetches could move the HW
    with LocalCluster(
        tmp_path, backend="raft", replicas=1, spus=3, spu_extra=["--lag-time", "300"]
    ) as cluster:
        sc, _ = await cluster.start_all()
        async with cluster.admin() as admin:
            await admin.create_topic(TOPIC, computed(1, 3), wait=20)
        await eventually(lambda: cluster.partitions_online(TOPIC, 1, via=sc), what="Online")
        async with cluster.admin() as admin:
            (partition,) = await admin.list_partitions(TOPIC)
        leader = partition.spec.leader
        frozen = next(s for s in partition.spec.replicas if s != leader)
        spu = {s.id: s for s in cluster.layout.spus}

        async with RawDataClient(spu[leader].public) as producer:
            for n in range(5):  # every follower proved itself: acks=all commits
                answer = await producer.produce(TOPIC, 0, records_batch([b"r%d" % n]))
                assert answer.error is None and answer.base_offset == n, answer.error
            assert await high_watermark(spu[leader].public) == 5
            cluster.spus[frozen].signal(signal.SIGSTOP)
            try:
                answer = await producer.produce(TOPIC, 0, records_batch([b"r5"]), acks=Acks.LEADER)
                assert answer.error is None and answer.base_offset == 5

                # right id, wrong key: the proof is refused and the connection closed
                async with RawDataClient(spu[leader].private) as forger:
                    challenge, _ = await forger.request(ReplicaHello(id=1, follower=frozen))
                    assert isinstance(challenge, ReplicaChallenge)
                    proof = fetch_proof(
                        WRONG_KEY, bytes.fromhex(challenge.nonce), leader=leader, follower=frozen
                    )
                    refused, _ = await forger.request(
                        ReplicaProof(id=2, follower=frozen, proof=proof.hex())
                    )
                    assert isinstance(refused, ReplicaProven) and refused.error is not None
                    assert refused.error.code is ErrorCode.UNAUTHORIZED
                    with pytest.raises(ConnectionError):
                        await forger.receive()
                # no proof at all: a fetch claiming the frozen follower's whole log
                async with RawDataClient(spu[leader].private) as forger:
                    claim = ReplicaFetchRequest(
                        id=1, topic=TOPIC, partition=0, follower=frozen, offset=6
                    )
                    answer_to_claim, _ = await forger.request(claim)
                    assert answer_to_claim.error is not None
                    assert answer_to_claim.error.code is ErrorCode.UNAUTHORIZED
                assert await high_watermark(spu[leader].public) == 5
            finally:
                cluster.spus[frozen].signal(signal.SIGCONT)
            # the real follower, thawed, proves itself and the record commits
            await eventually(lambda: hw_is(spu[leader].public, 6), what="HW 6 after the thaw")

        leader_log = cluster.spus[leader].log()
        assert f"refused the proof of follower {frozen}: a wrong proof" in leader_log
        # (the second refusal of the same host within 30 s is not logged again)
        cluster.assert_no_crash()
