"""One controller pass (``plan_cluster``) over a settled cluster, by store size.

    .venv/bin/python -m bench.controller_pass [--partitions 100 10000 100000]

Builds a settled cluster in memory (3 online SPUs, topics of 100 partitions x 2
replicas, every reducer run to a fixed point through the simulated KV), then
times passes that find nothing to do: the cost a leader pays on every change and
every resync tick, and the first pass of a new leader. Then the same with the SPUs'
status reports read on every pass, as a live leader does (every replica reported at
offset 0, which the statuses already hold).
"""

from __future__ import annotations

import argparse
import time

from bench.common import machine, summary
from ha_sc.controllers import CreateObject, SimulatedCluster, simulate_actions
from ha_sc.controllers.cluster_plan import plan_cluster
from ha_sc.controllers.partitions.status_offsets import ReportedOffsets
from ha_sc.model import Kind, SpuSpec, TopicReplicas, TopicSpec
from ha_sc.model.spu import Endpoint

SPUS = (5001, 5002, 5003)
Reported = dict[str, dict[int, ReportedOffsets]]
PER_TOPIC = 100


def settled(partitions: int, reported: Reported | None = None) -> SimulatedCluster:
    endpoint = Endpoint(host="127.0.0.1", port=9005)
    creates = [
        CreateObject(
            Kind.SPU, str(i), SpuSpec(id=i, public_endpoint=endpoint, private_endpoint=endpoint)
        )
        for i in SPUS
    ]
    topics = max(1, partitions // PER_TOPIC)
    creates += [
        CreateObject(
            Kind.TOPIC,
            f"t{n}",
            TopicSpec(replicas=TopicReplicas.new_computed(min(partitions, PER_TOPIC), 2)),
        )
        for n in range(topics)
    ]
    state = simulate_actions(SimulatedCluster(), creates)
    for _ in range(10):
        actions = plan(state, reported)
        if not actions:
            return state
        state = simulate_actions(state, actions)
    raise RuntimeError("the cluster did not settle in 10 passes")


def plan(state: SimulatedCluster, reported: Reported | None = None) -> list[object]:
    return list(
        plan_cluster(
            spus=state.spus,
            topics=state.topics,
            partitions=state.partitions,
            connected=set(SPUS),
            reported=reported,
        )
    )


def reports_at_zero(partitions: int) -> Reported:
    """Every replica of every partition reported at offset 0 by its SPU (the replicas
    placed as ``settled`` places them, read back from a settled cluster)."""
    state = settled(partitions)
    return {
        key: {spu: ReportedOffsets(leo=0, hw=0, lsr=1) for spu in p.spec.replicas}
        for key, p in state.partitions.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, nargs="+", default=[100, 10_000, 100_000])
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    for size in args.partitions:
        for reported in (None, reports_at_zero(size)):
            state = settled(size, reported)
            assert len(state.partitions) == size, len(state.partitions)
            times = []
            for _ in range(args.passes):
                start = time.perf_counter()
                actions = plan(state, reported)
                times.append(time.perf_counter() - start)
                assert not actions, actions[:3]
            what = "pass" if reported is None else "pass reading reports"
            print(f"{size:>7} partitions: {what} {summary(times)}")


if __name__ == "__main__":
    main()
