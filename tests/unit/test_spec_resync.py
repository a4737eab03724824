"""A resync by cursor leaves an SPU holding exactly what a full sync would.

Random histories of KV changes (puts and deletes of partitions and topics, status-only
writes, several changes at one revision as in a transaction) are applied to two
replicas' caches, each re-listing at its own moments (replica B's watch of a kind may
also be down for a while, so that its changes reach B only by the next listing). At
random points the SPU takes a full sync from replica A and keeps its cursor; at the
end replica B (the new leader) answers that cursor. The SPU's replica table after
"state at R1 + resync(R1 -> now)" (the specs sent, then every partition not held
dropped) must equal its table after a full sync now; and B must tell the changes from
its journals (spec changes only) when it has not re-listed anything that moved, nor
forgotten deletes, since.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ha_sc.model import (
    Endpoint,
    Kind,
    PartitionResolution,
    PartitionSpec,
    PartitionStatus,
    SpuSpec,
    TopicReplicas,
    TopicSpec,
    encode_value,
)
from ha_sc.model.codec import decode_object
from ha_sc.model.meta import StoredObject
from ha_sc.protocol import ReplicaSpec, SpecCursor
from ha_sc.sc.spec_resync import cursor_changes, keys_to_resend, replica_resync, spec_cursor
from ha_sc.sc.spu_spec_sync import replica_spec, topic_of
from ha_sc.spu.replica_table import ReplicaTable
from ha_sc.store import GlobalStore
from ha_sc.store.revision_journal import RevisionJournal

ME = 1
SPUS = (1, 2, 3)
PARTITIONS = tuple(f"t{t}-{i}" for t in range(2) for i in range(3))
TOPICS = ("t0", "t1")


@dataclass
class Kv:
    """What the store holds: kind -> key -> (value, revision, create revision)."""

    revision: int = 1
    data: dict[Kind, dict[str, tuple[bytes, int, int]]] = field(
        default_factory=lambda: {kind: {} for kind in Kind}
    )

    def obj(self, kind: Kind, key: str) -> StoredObject[Any, Any]:
        value, revision, created = self.data[kind][key]
        return decode_object(kind, key, value, revision=revision, create_revision=created)


def spu_value(spu_id: int) -> bytes:
    endpoint = Endpoint(host="127.0.0.1", port=9000 + spu_id)
    return encode_value(SpuSpec(id=spu_id, public_endpoint=endpoint, private_endpoint=endpoint))


class Replica:
    """One SC replica's cache, fed the KV's changes as its dispatchers would."""

    def __init__(self, kv: Kv) -> None:
        self.kv = kv
        self.cache = GlobalStore(max_tombstones=8)
        self.relisted_moved_at = {kind: 0 for kind in Kind}
        self.deaf: set[Kind] = set()
        """Kinds whose watch is down: their changes reach this replica by re-listing."""
        for kind in Kind:
            self.relist(kind)
            self.relisted_moved_at[kind] = kv.revision  # the first listing: no history before

    def relist(self, kind: Kind) -> None:
        store = self.cache.local_store(kind)
        listed = self.kv.data[kind]
        changed = [
            self.kv.obj(kind, key)
            for key, (_, revision, _) in listed.items()
            if (cached := store.get(key)) is None or cached.meta.revision != revision
        ]
        gone = any(key not in listed for key in store.snapshot())
        store.sync_listing(changed, listed.keys(), self.kv.revision)
        self.deaf.discard(kind)
        if changed or gone:
            self.relisted_moved_at[kind] = self.kv.revision

    def put(self, kind: Kind, key: str) -> None:
        if kind not in self.deaf:
            self.cache.local_store(kind).apply_put(self.kv.obj(kind, key))

    def delete(self, kind: Kind, key: str, revision: int) -> None:
        if kind not in self.deaf:
            self.cache.local_store(kind).apply_delete(key, revision)

    def hosted(self) -> dict[str, ReplicaSpec]:
        """What a full sync gives SPU ``ME`` now."""
        return {
            p.key: replica_spec(p, self.cache.topics.get(topic_of(p.key)))
            for p in self.cache.partitions.objects()
            if ME in p.spec.replicas
        }


def table(specs: dict[str, ReplicaSpec]) -> ReplicaTable:
    t = ReplicaTable(ME)
    t.replace(specs.values())
    return t


placement = st.sampled_from(SPUS).flatmap(
    lambda leader: st.sets(st.sampled_from(SPUS), max_size=2).map(
        lambda others: (leader, sorted({leader, *others}))
    )
)
change = st.one_of(
    st.tuples(st.just("partition"), st.sampled_from(PARTITIONS), placement),
    st.tuples(st.just("status"), st.sampled_from(PARTITIONS), st.integers(0, 5)),
    st.tuples(st.just("delete-partition"), st.sampled_from(PARTITIONS), st.none()),
    st.tuples(st.just("topic"), st.sampled_from(TOPICS), st.sampled_from([None, 1000, 2000])),
    st.tuples(st.just("delete-topic"), st.sampled_from(TOPICS), st.none()),
)
step = st.one_of(
    st.tuples(st.just("changes"), st.lists(change, min_size=1, max_size=3)),
    st.tuples(st.just("cursor"), st.none()),
    st.tuples(st.just("relist-a"), st.sampled_from([Kind.TOPIC, Kind.PARTITION])),
    st.tuples(st.just("relist-b"), st.sampled_from([Kind.TOPIC, Kind.PARTITION])),
    st.tuples(st.just("deaf-b"), st.sampled_from([Kind.TOPIC, Kind.PARTITION])),
)


def write(kv: Kv, replicas: list[Replica], revision: int, what: tuple[str, str, Any]) -> None:
    """One change at ``revision`` (several may share one), applied to every replica."""
    op, key, arg = what
    kind = Kind.TOPIC if "topic" in op else Kind.PARTITION
    held = kv.data[kind]
    if op.startswith("delete"):
        if key not in held:
            return
        del held[key]
        for r in replicas:
            r.delete(kind, key, revision)
        return
    if op == "status":
        if key not in held:
            return
        spec = kv.obj(kind, key).spec
        value = encode_value(spec, PartitionStatus(resolution=PartitionResolution.ONLINE, size=arg))
    elif op == "partition":
        leader, members = arg
        value = encode_value(PartitionSpec(leader=leader, replicas=members))
    else:
        value = encode_value(TopicSpec(replicas=TopicReplicas.new_computed(3, 2), segment_size=arg))
    created = held[key][2] if key in held else revision
    held[key] = (value, revision, created)
    for r in replicas:
        r.put(kind, key)


HOSTED_T1 = ("changes", [("topic", "t1", 1000), ("partition", "t1-0", (ME, [ME, 2]))])
LATER = ("changes", [("topic", "t0", None), ("partition", "t0-1", (2, [2]))])
"""Moves both kinds past ``HOSTED_T1``'s revision, so a cursor taken next reflects it."""


@example(  # t1-0 moves and moves back while b's watch is down: b's listing sees no change
    [
        HOSTED_T1,
        ("deaf-b", Kind.PARTITION),
        ("changes", [("partition", "t1-0", (2, [ME, 2]))]),
        LATER,
        ("cursor", None),
        ("changes", [("partition", "t1-0", (ME, [ME, 2]))]),
        ("relist-b", Kind.PARTITION),
    ]
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=40))
@example([HOSTED_T1, LATER, ("cursor", None), ("changes", [("topic", "t1", 2000)])])
@example([HOSTED_T1, LATER, ("cursor", None), ("changes", [("delete-topic", "t1", None)])])
@example(
    [
        HOSTED_T1,
        LATER,
        ("cursor", None),
        ("deaf-b", Kind.TOPIC),
        ("changes", [("delete-topic", "t1", None)]),
        ("relist-b", Kind.TOPIC),
    ]
)
@example(
    [
        HOSTED_T1,
        LATER,
        ("cursor", None),
        ("deaf-b", Kind.PARTITION),
        ("changes", [("delete-partition", "t1-0", None)]),
        ("relist-b", Kind.PARTITION),
    ]
)
def test_state_at_a_cursor_plus_the_resync_equals_a_full_sync_now(
    steps: list[tuple[str, Any]],
) -> None:
    kv = Kv()
    kv.data[Kind.SPU] = {f"spu-{i}": (spu_value(i), 1, 1) for i in SPUS}
    a, b = Replica(kv), Replica(kv)
    cursors: list[tuple[SpecCursor, dict[str, ReplicaSpec]]] = []
    for what, arg in steps:
        if what == "changes":
            kv.revision += 1
            for n, one in enumerate(arg):
                write(kv, [a, b], kv.revision, one)
                if n == 0 and len(arg) > 1:  # a cursor taken in the middle of a transaction
                    cursors.append((spec_cursor(a.cache), a.hosted()))
        elif what == "cursor":
            cursors.append((spec_cursor(a.cache), a.hosted()))
        elif what == "relist-a":
            a.relist(arg)
        elif what == "relist-b":
            b.relist(arg)
        elif what == "deaf-b":
            b.deaf.add(arg)
    for kind in list(b.deaf):  # its watch ended: it re-lists
        b.relist(kind)
    kv.revision += 1  # b wins: its progress marks bring every kind to the KV's revision
    for kind in Kind:
        b.cache.local_store(kind).advance_revision(kv.revision)
    now = b.hosted()
    assert now == a.hosted()
    for cursor, held in cursors:
        changes = cursor_changes(b.cache, cursor)
        assert changes is not None  # b reflects every cursor a gave
        moved = b.relisted_moved_at
        if (
            moved[Kind.TOPIC] <= cursor.topics
            and moved[Kind.PARTITION] <= cursor.partitions
            and not forgot(b)
        ):
            assert changes.from_journal  # nothing b re-listed or forgot lies after the cursor
        spu = table(held)
        resend = keys_to_resend(changes, b.cache.partitions)
        spu.update(replica_resync(now, resend), [k for k in held if k not in now])
        assert spu.replicas() == table(now).replicas()


def forgot(replica: Replica) -> bool:
    """Deletes were forgotten (more tombstones than kept)."""
    return replica.cache.partitions.fence > 0 or replica.cache.topics.fence > 0


def test_the_journal_answers_from_its_floor_and_forgets_the_oldest_points() -> None:
    journal = RevisionJournal(max_points=4)
    assert journal.spec_epoch_at(5) is None  # nothing listed yet
    journal.listed(10, 1, moved=True)
    for revision, epoch in [(12, 2), (12, 3), (15, 4)]:
        journal.spec_changed(revision, epoch)
    assert journal.spec_epoch_at(9) is None  # before the first listing
    assert [journal.spec_epoch_at(r) for r in (10, 11, 12, 14, 15, 99)] == [1, 1, 3, 3, 4, 4]
    journal.listed(20, 5, moved=False)  # a re-listing that moved nothing keeps the history
    assert journal.spec_epoch_at(11) == 1
    journal.spec_changed(21, 6)
    journal.spec_changed(22, 7)  # five points: the oldest two go, the floor moves up
    assert journal.floor == 12
    assert journal.spec_epoch_at(11) is None
    assert journal.spec_epoch_at(15) == 4
    journal.listed(30, 9, moved=True)  # a re-listing that moved something: a new floor
    assert journal.spec_epoch_at(22) is None
    assert journal.spec_epoch_at(31) == 9
