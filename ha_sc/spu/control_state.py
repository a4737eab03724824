"""What the SPU knows from the SC, and the fence every SC message passes first.

Sans-IO: the link hands each spec message to ``apply``. A message whose epoch
is lower than the highest seen comes from a deposed leader: it is refused and
counted, and nothing in it is applied. A full sync replaces the SPU and replica
specs; a delta changes them. What the SPU holds stays while no SC is reachable.

The cursor is the store revisions the specs held reflect, as the last applied message
said (``cursor``); the SPU names it when it registers, and a leader that can tell
the changes since answers with a resync (a ``delta`` with ``since``) instead of a full
sync. It lives in memory only: a restarted SPU gets a full sync.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from election.epoch_fence import EpochFence
from ha_sc.model.spu import SpuSpec
from ha_sc.protocol import Delta, FullSync, SpecCursor
from ha_sc.spu.fetch_keys import FetchKeys
from ha_sc.spu.replica_table import ReplicaChange, ReplicaTable

log = logging.getLogger("ha_sc.spu")

LOG_EACH = 10
"""Replica changes of one SC message logged one by one; the rest are counted."""


class ControlState:
    """The fence, the SPU directory, the local replicas, and the SC being followed."""

    def __init__(
        self,
        spu_id: int,
        *,
        highest_epoch: int = 0,
        public_address: str | None = None,
        private_address: str | None = None,
        on_change: Callable[[], None] = lambda: None,
        check_fetches: bool = False,
    ) -> None:
        self.spu_id = spu_id
        self.fetch_keys = FetchKeys(spu_id, checking=check_fetches)
        """The keys followers prove their id with on the private port."""
        self.fence = EpochFence(name=f"spu {spu_id}", highest=highest_epoch)
        self.replicas = ReplicaTable(spu_id)
        self.spus: dict[int, SpuSpec] = {}
        """Every SPU's spec by id, for finding a leader's private endpoint."""
        self.sc_address: str | None = None
        """The SC replica whose full sync this SPU follows now; None while disconnected."""
        self.syncs = 0
        """Full syncs applied."""
        self.resyncs = 0
        """Sessions resumed from the cursor (resyncs applied)."""
        self.cursor: SpecCursor | None = None
        """What the specs held reflect; None: not known (a full sync next)."""
        self.resync_mismatch: str | None = None
        """Why the last resync left this SPU holding something else than the leader
        said (the cursor is then dropped); None when it did not."""
        self.applied = 0
        """SC messages (full syncs, deltas, keepalives) that passed the fence."""
        self._public = public_address
        self._private = private_address
        self._on_change = on_change

    @property
    def highest_epoch(self) -> int:
        return self.fence.highest

    @property
    def refused(self) -> int:
        """SC messages refused for a stale epoch."""
        return self.fence.refused

    def apply(self, message: FullSync | Delta) -> bool:
        """Apply ``message`` if its epoch passes the fence; False if it was refused."""
        highest = self.fence.highest
        admitted = self.fence.admit(message.epoch)
        if admitted:
            self.applied += 1
            if isinstance(message, FullSync):
                self._full_sync(message)
            else:
                self._delta(message)
        if not (admitted and isinstance(message, Delta) and message.is_empty) or (
            self.fence.highest != highest
        ):
            self._on_change()  # a keepalive under a known epoch changes nothing
        return admitted

    def connected(self, address: str) -> None:
        self.sc_address = address
        self._on_change()

    def disconnected(self) -> None:
        if self.sc_address is not None:
            self.sc_address = None
            self._on_change()

    def _full_sync(self, sync: FullSync) -> None:
        self.syncs += 1
        self.cursor = sync.cursor
        self.spus = {spec.id: spec for spec in sync.spus}
        self.fetch_keys.update(sync.fetch_keys)
        changes = self.replicas.replace(sync.replicas)
        log.info(
            "spu %d: full sync at epoch %d: %d spus, %d local replicas, %d changed",
            self.spu_id,
            sync.epoch,
            len(self.spus),
            len(self.replicas),
            len(changes),
        )
        self._log_changes(changes, sync.epoch)
        self._check_own_spec()

    def _delta(self, delta: Delta) -> None:
        if delta.is_resync:
            self._resync(delta)
            return
        self.cursor = delta.cursor
        if delta.is_empty:
            return
        for spu_id in delta.spus_removed:
            self.spus.pop(spu_id, None)
        for spec in delta.spus_changed:
            self.spus[spec.id] = spec
        if delta.fetch_keys is not None:
            self.fetch_keys.update(delta.fetch_keys)
        changes = self.replicas.update(delta.replicas_changed, delta.replicas_removed)
        self._log_changes(changes, delta.epoch)
        if any(spec.id == self.spu_id for spec in delta.spus_changed):
            self._check_own_spec()

    def _resync(self, delta: Delta) -> None:
        """The first message of a session resumed from the cursor: every SPU spec, the
        replica specs changed since the cursor (``since``), and every partition to hold."""
        self.resyncs += 1
        self.spus = {spec.id: spec for spec in delta.spus_changed}
        if delta.fetch_keys is not None:
            self.fetch_keys.update(delta.fetch_keys)
        held = set(delta.replicas_held or ())
        gone = [key for key in self.replicas.partitions() if key not in held]
        changes = self.replicas.update(delta.replicas_changed, gone)
        self.resync_mismatch = resync_mismatch(delta, self.cursor, len(self.replicas), held)
        self.cursor = None if self.resync_mismatch else delta.cursor
        log.info(
            "spu %d: synced at epoch %d since %s: %d replicas changed, %d removed, "
            "%d local replicas, %d changed",
            self.spu_id,
            delta.epoch,
            delta.since,
            len(delta.replicas_changed),
            len(gone),
            len(self.replicas),
            len(changes),
        )
        self._log_changes(changes, delta.epoch)
        self._check_own_spec()

    def _log_changes(self, changes: list[ReplicaChange], epoch: int) -> None:
        """One line per change, up to ``LOG_EACH``; the rest counted by kind (a store
        filling adds hundreds of replicas per topic, 66k in all, and a line each held the
        loop for seconds)."""
        for change in changes[:LOG_EACH]:
            log.info("spu %d: %s (epoch %d)", self.spu_id, change, epoch)
        rest = changes[LOG_EACH:]
        if rest:
            kinds = Counter(change.kind.value for change in rest)
            log.info(
                "spu %d: and %d more replicas changed: %s (epoch %d)",
                self.spu_id,
                len(rest),
                ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())),
                epoch,
            )

    def _check_own_spec(self) -> None:
        own = self.spus.get(self.spu_id)
        if own is None:
            return
        for what, stored, given in (
            ("public", str(own.public_endpoint), self._public),
            ("private", str(own.private_endpoint), self._private),
        ):
            if given is not None and stored != given:
                log.warning(
                    "spu %d: the cluster has %s endpoint %s for this spu, but it was started "
                    "with %s",
                    self.spu_id,
                    what,
                    stored,
                    given,
                )

    def summary(self) -> dict[str, Any]:
        """The state file's document but its replicas (kept encoded apart:
        ``state_replicas.py``)."""
        return {
            "id": self.spu_id,
            "sc": self.sc_address,
            "highest_epoch": self.highest_epoch,
            "refused": self.refused,
            "syncs": self.syncs,
            "spus": sorted(self.spus),
        }

    def snapshot(self) -> dict[str, Any]:
        """The state file's document."""
        return {
            **self.summary(),
            "replicas": [
                {
                    "partition": r.partition,
                    "role": r.role.value,
                    "leader": r.leader,
                    "replicas": list(r.replicas),
                }
                for r in self.replicas.replicas()
            ],
        }


def resync_mismatch(
    delta: Delta, cursor: SpecCursor | None, holding: int, held: set[str]
) -> str | None:
    """Why applying the resync ``delta`` at ``cursor`` left the SPU with another set than
    the leader's (``holding`` replicas now), if it did."""
    if delta.since != cursor:
        return f"it starts at {delta.since}, not at {cursor}"
    if delta.replicas_held is None:
        return "it names no partitions to hold"
    if holding != len(held):
        return f"it leaves {holding} local replicas, the leader has {len(held)}"
    return None
