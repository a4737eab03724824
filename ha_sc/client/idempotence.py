"""Producer ids and sequence numbers: what lets an SPU drop a batch it already has.

Each producer picks a random 63-bit producer id (never 0, which means "not
idempotent"). Per partition, sequences count records from 0: a batch's
``base_sequence`` is the sequence of its first record and the next batch starts
right after its last one. A retried batch is sent again byte for byte (same producer
id, same sequences), so the partition leader recognises it and answers with the
offset it was first written at instead of writing it twice.

After a batch fails for good its fate is unknown (it may have been written), so the
partition goes on under a fresh producer id from sequence 0: no later batch can be
taken for that one, and the SPU never sees a gap in a producer's sequences.

The leader can still see a gap when it lost records: with acks=leader, a batch the old
partition leader acknowledged may be missing from the new leader's log. The new leader
then refuses the next batch (``out_of_sequence``; nothing of it written), and the
producer moves that partition to a fresh producer id from sequence 0 and sends the
refused batch again under it (``PartitionSender``), so its records are delivered once.
"""

from __future__ import annotations

import secrets

MAX_SEQUENCE = 2**63 - 1


def new_producer_id() -> int:
    """A random producer id in 1 .. 2**63 - 1."""
    while True:
        candidate = secrets.randbits(63)
        if candidate:
            return candidate


class PartitionSequence:
    """The producer id and next sequence of one producer on one partition."""

    def __init__(self, producer_id: int) -> None:
        self.producer_id = producer_id
        self.next_sequence = 0

    def take(self, record_count: int) -> tuple[int, int]:
        """``(producer_id, base_sequence)`` for the next batch of ``record_count`` records."""
        base = self.next_sequence
        if base + record_count > MAX_SEQUENCE:
            self.restart()
            base = 0
        self.next_sequence = base + record_count
        return self.producer_id, base

    def restart(self) -> None:
        """Go on under a fresh producer id, from sequence 0."""
        self.producer_id = new_producer_id()
        self.next_sequence = 0
