"""The state file's ``replicas`` array, kept encoded replica by replica.

An SPU of a 100k-partition store holds about 66k replicas, and encoding them all for
every write of ``spu-state.json`` (a list of dicts, then ``json.dumps``) held its event
loop 0.3-2 s at a time, so it heard of a new SC leader that late. ``ReplicaLines``
keeps one JSON object per replica and re-encodes only those the replica table changed
since (its ``touched_feed``), ``SLICE`` at a time with the loop served in between; a
write then joins the encoded objects in partition order, which costs milliseconds.
"""

from __future__ import annotations

import asyncio
from json.encoder import encode_basestring_ascii

from ha_sc.spu.replica_table import LocalReplica, ReplicaTable

SLICE = 2000
"""Replicas encoded between two turns of the event loop (a few ms)."""


def encode_replica(replica: LocalReplica) -> bytes:
    """One replica as the state file shows it (keys sorted, as ``json.dumps`` with
    ``sort_keys`` writes them)."""
    replicas = ", ".join(str(spu) for spu in replica.replicas)
    return (
        f'{{"leader": {replica.leader}, "partition": {encode_basestring_ascii(replica.partition)}, '
        f'"replicas": [{replicas}], "role": "{replica.role.value}"}}'
    ).encode()


class ReplicaLines:
    """The encoded replicas of ``table``, brought up to date by ``refresh``."""

    def __init__(self, table: ReplicaTable) -> None:
        self._table = table
        self._pending = table.touched_feed()
        self._pending.update(table.partitions())  # those held before the feed existed
        self._encoded: dict[str, bytes] = {}
        self._order: list[str] = []
        """The encoded partitions, sorted (appended to, then sorted again: one merge)."""
        self._gone = False
        """Partitions left ``_encoded`` since ``_order`` was last rebuilt."""

    @property
    def pending(self) -> int:
        """Replicas changed since they were last encoded."""
        return len(self._pending)

    def refresh(self, limit: int | None = None) -> bool:
        """Encode up to ``limit`` changed replicas (all if None); True when none is left."""
        pending, table, encoded = self._pending, self._table, self._encoded
        done = 0
        while pending and (limit is None or done < limit):
            key = pending.pop()
            replica = table.get(key)
            if replica is None:
                if encoded.pop(key, None) is not None:
                    self._gone = True
            else:
                if key not in encoded:
                    self._order.append(key)
                encoded[key] = encode_replica(replica)
            done += 1
        return not pending

    async def refresh_sliced(self) -> None:
        """``refresh`` all, ``SLICE`` at a time, letting the event loop run in between."""
        for _ in range(1 + self.pending // SLICE):  # more come in meanwhile: a later write's
            if self.refresh(SLICE):
                return
            await asyncio.sleep(0)

    def array(self) -> bytes:
        """The JSON array of the replicas as last refreshed, by partition key."""
        encoded = self._encoded
        if self._gone:
            # a key removed and added again since is in the list twice: once is kept
            self._order = [key for key in dict.fromkeys(self._order) if key in encoded]
            self._gone = False
        self._order.sort()  # sorted but for the keys appended since: timsort merges them
        return b"[" + b", ".join([encoded[key] for key in self._order]) + b"]"
