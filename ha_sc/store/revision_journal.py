"""Which store epoch a KV revision corresponds to, for readers that remember revisions.

Store epochs are local to a replica; KV revisions are the store's, the same on every
replica. A reader that knows only a revision (an SPU's cursor, kept from another
replica's messages) asks ``spec_epoch_at(revision)`` and then ``spec_changes_since`` that
epoch: every spec change at a later revision has a later epoch, so those changes (and
some earlier ones again, which is harmless for readers that set what they get) are all
it needs.

The journal keeps a point ``(revision, epoch)`` for each applied batch that changed a
spec (an add, a spec update, a delete), and a floor: the lowest revision it can answer
for. The floor is the revision of the first listing (what came before it was never
seen), of any later re-listing that found something moved (a re-list sees the net
change since the watch ended, not each change: an object made and deleted in between
never reached this replica), and moves up when old points are dropped
(``max_points``). A re-listing that found nothing moved keeps the floor. Points are
kept in two ``array`` columns: 16 bytes each, 200k points per kind by default.
"""

from __future__ import annotations

import bisect
from array import array

DEFAULT_MAX_POINTS = 200_000


class RevisionJournal:
    """Points (revision, epoch) of the spec changes of one kind's store, oldest first."""

    def __init__(self, *, max_points: int = DEFAULT_MAX_POINTS) -> None:
        if max_points < 2:
            raise ValueError(f"max_points must be >= 2, not {max_points}")
        self._max_points = max_points
        self._revisions = array("q")
        self._epochs = array("q")
        self._floor: int | None = None
        """No answer below this revision; None until the first listing."""
        self._floor_epoch = 0

    @property
    def floor(self) -> int | None:
        """The lowest revision ``spec_epoch_at`` answers for (None: none yet)."""
        return self._floor

    def __len__(self) -> int:
        return len(self._revisions)

    def listed(self, revision: int, epoch: int, *, moved: bool) -> None:
        """A listing at ``revision`` left the store at ``epoch``; ``moved``: it added,
        changed or removed something (the first listing always counts as moved)."""
        if moved or self._floor is None:
            self._revisions = array("q")
            self._epochs = array("q")
            self._floor = revision
            self._floor_epoch = epoch

    def spec_changed(self, revision: int, epoch: int) -> None:
        """A watch event at ``revision`` changed a spec; the store is now at ``epoch``."""
        if self._floor is None:
            return  # before the first listing: that listing sets the floor
        self._revisions.append(revision)
        self._epochs.append(epoch)
        if len(self._revisions) > self._max_points:
            drop = len(self._revisions) // 2  # the last point dropped becomes the floor
            self._floor = self._revisions[drop - 1]
            self._floor_epoch = self._epochs[drop - 1]
            del self._revisions[:drop]
            del self._epochs[:drop]

    def spec_epoch_at(self, revision: int) -> int | None:
        """A store epoch E such that every spec change at a revision above ``revision``
        was applied at an epoch above E; None when the journal cannot tell (below its
        floor, or no listing yet). The caller checks that its store reflects
        ``revision`` at all."""
        if self._floor is None or revision < self._floor:
            return None
        at = bisect.bisect_right(self._revisions, revision)
        return self._epochs[at - 1] if at else self._floor_epoch
