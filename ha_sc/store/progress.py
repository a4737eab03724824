"""Progress marks: a leader's proof that a kind's cache is current.

A new leader must not act before its cache reflects the store as of the moment
it won. Asking each dispatcher to re-list would do it, but a re-list costs time
in proportion to the store (seconds at 100k partitions), which is what a warm
standby exists to avoid. Instead the new leader writes one small mark under
each kind's prefix, fenced by its epoch. The mark travels through the same
watch as every other change of that kind, in revision order, so once a kind's
cache has applied the mark it reflects every change made before it. The cost
is one write per kind, whatever the store holds.

The mark's key starts with a dot, which no object name may (names are DNS-1123
labels or numbers), so it never collides with an object; dispatchers apply it
as "revision reached" and never hand it to readers.
"""

from __future__ import annotations

import json

PROGRESS_KEY = ".progress"
"""The one key per kind that carries the latest leader's mark."""


def is_progress_key(key: str) -> bool:
    return key == PROGRESS_KEY


def progress_value(epoch: int, replica: str) -> bytes:
    """The mark's value: who wrote it, for an operator reading the KV by hand."""
    return json.dumps({"epoch": epoch, "replica": replica}, sort_keys=True).encode()
