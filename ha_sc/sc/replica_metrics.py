"""What an SC replica shows on ``/metrics``: one ``ScSample`` read at each scrape."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from election.api import Candidate
from election.term import Term
from ha_sc.kv.api import KvStore
from ha_sc.kv.memory import MemoryKv
from ha_sc.kv.raft import RaftKv
from ha_sc.model.kinds import Kind
from ha_sc.sc.settings import ScSettings
from ha_sc.store import GlobalStore
from ha_sc.telemetry.metrics_sc import ScMetrics, ScSample


def local_kv_revision(kv: KvStore | None) -> int | None:
    """The KV's revision where this replica holds it (a Raft node, the memory store);
    None on etcd, whose revision is a round trip away."""
    if isinstance(kv, RaftKv | MemoryKv):
        return kv.revision
    return None


def replica_sample(
    settings: ScSettings,
    cache: GlobalStore,
    *,
    kv: KvStore | None,
    candidate: Candidate | None,
    term: Term | None,
    connected_spus: Callable[[], Collection[int]],
    pushes: Mapping[str, int] | None = None,
) -> ScSample:
    seen = None if candidate is None else candidate.leader()
    epoch = term.epoch if term is not None else (seen.epoch if seen is not None else 0)
    return ScSample(
        replica_id=settings.replica_id,
        backend=settings.backend.value,
        is_leader=term is not None,
        epoch=epoch,
        store_revision=max(cache.view(kind).revision for kind in Kind),
        kv_revision=local_kv_revision(kv),
        objects={kind.value: len(cache.view(kind)) for kind in Kind},
        connected_spus=len(connected_spus()),
        pushes=dict(pushes or {}),
    )


def replica_metrics(
    settings: ScSettings,
    cache: GlobalStore,
    *,
    kv: Callable[[], KvStore | None],
    candidate: Callable[[], Candidate | None],
    term: Callable[[], Term | None],
    connected_spus: Callable[[], Collection[int]],
    pushes: Mapping[str, int] | None = None,
) -> ScMetrics:
    """The replica's registry; each scrape reads the replica through the callables."""
    return ScMetrics(
        lambda: replica_sample(
            settings,
            cache,
            kv=kv(),
            candidate=candidate(),
            term=term(),
            connected_spus=connected_spus,
            pushes=pushes,
        )
    )
