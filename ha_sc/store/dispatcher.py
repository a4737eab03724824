"""Keeps one kind's store in step with the KV: list at R, watch from R + 1, repeat.

The dispatcher is the only writer of its store. It re-lists when the watch
history it needs was compacted, when the KV drops the watch, when a reader
waits for a revision the store has not reached (``wait_for_revision``), and
every ``resync_interval`` seconds; each re-list ends the current watch and
starts a new one from the listing's revision.

A value that fails validation (say, written by hand) is logged at warning and
left out; if the store holds an earlier valid version of that key, the earlier
version stays. Readers thus never see a spurious delete (which could make a
controller delete what the object owns), and the bad value can neither poison
the cache nor crash the replica. The key stays listed in ``rejected`` until a
valid value or a delete arrives.

A leader's progress mark (``ha_sc.store.progress``) only moves the store's
revision: readers never see it.

What cannot be applied is fatal: an event older than the revision the store
already reflects (the KV contract says watch revisions never go backwards, so
this is a replay or lost history), an event of another kind, or any
unexpected error while applying. The dispatcher then raises CacheCorrupted and
its supervisor stops the replica rather than let it keep a wrong cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, cast

from ha_sc.kv.api import (
    EventType,
    KvError,
    KvStore,
    KvUnavailable,
    Listing,
    RevisionCompacted,
    WatchEvent,
)
from ha_sc.model.codec import DecodedValues, InvalidObject, decode_object
from ha_sc.model.kinds import Kind
from ha_sc.model.meta import SpecT, StatusT, StoredObject
from ha_sc.store.epoch_map import LocalStore
from ha_sc.store.errors import CacheCorrupted
from ha_sc.store.global_store import GlobalStore
from ha_sc.store.progress import is_progress_key
from ha_sc.store.settings import DispatcherSettings
from ha_sc.tasks import Supervisor
from ha_sc.telemetry.tracing_spans import cache_apply

logger = logging.getLogger(__name__)

SYNC_SLICE = 5000
"""Listed entries a full sync looks at between two yields to the event loop."""


@dataclass(frozen=True, slots=True)
class RejectedValue:
    """A KV value of the kind that failed validation and is not in the store."""

    key: str
    revision: int
    reason: str


class Dispatcher(Generic[SpecT, StatusT]):
    """Feeds one LocalStore from the KV; run it as the task ``dispatcher-<kind>``."""

    def __init__(
        self,
        kv: KvStore,
        store: LocalStore[SpecT, StatusT],
        *,
        settings: DispatcherSettings | None = None,
    ) -> None:
        self._kv = kv
        self._store = store
        self._settings = settings or DispatcherSettings()
        self._rejected: dict[str, RejectedValue] = {}
        self._seen = DecodedValues(store.kind)
        self._resync_timer: asyncio.Timeout | None = None
        self._catch_up_wanted = False
        self.ready = asyncio.Event()
        """Set once the first full sync is in the store."""

    @property
    def kind(self) -> Kind:
        return self._store.kind

    @property
    def task_name(self) -> str:
        return f"dispatcher-{self.kind}"

    @property
    def revision(self) -> int:
        """The KV revision the store reflects."""
        return self._store.revision

    @property
    def decoded_values(self) -> DecodedValues:
        """Values decoded lately, kept so that the same bytes are not validated again."""
        return self._seen

    @property
    def rejected(self) -> Mapping[str, RejectedValue]:
        """Keys whose current KV value failed validation."""
        return MappingProxyType(dict(self._rejected))

    def start(self, supervisor: Supervisor) -> asyncio.Task[None]:
        """Run under ``supervisor`` as the critical task ``dispatcher-<kind>``."""
        return supervisor.start(self.task_name, self.run())

    async def run(self) -> None:
        """List, sync, watch; again and again until cancelled or the cache is corrupted."""
        self._store.on_revision_wanted(self._catch_up)
        try:
            while True:
                listing = await self._list()
                await self._sync(listing)
                await self._follow(listing.revision + 1)
        finally:
            self._store.on_revision_wanted(None)

    # listing

    async def _list(self) -> Listing:
        delay = self._settings.retry_initial
        attempt = 0
        while True:
            self._catch_up_wanted = False  # this listing will reflect any revision asked so far
            try:
                return await self._kv.list(self.kind)
            except KvUnavailable as exc:
                attempt += 1
                logger.warning(
                    "dispatcher %s: KV unavailable while listing (attempt %d): %s; "
                    "retrying in %.2f s",
                    self.kind,
                    attempt,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._settings.retry_max)

    async def _sync(self, listing: Listing) -> None:
        """Bring the store to the listing, ``SYNC_SLICE`` entries between yields to the
        event loop (100k partitions took over a second in one step, every 300 s). Only
        this dispatcher writes the store, so it stands still until the one write at
        the end; readers meanwhile see it as it was."""
        changed: list[StoredObject[SpecT, StatusT]] = []
        listed: set[str] = set()
        rejected: dict[str, RejectedValue] = {}
        for n, entry in enumerate(listing.entries, 1):
            if n % SYNC_SLICE == 0:
                await asyncio.sleep(0)
            if is_progress_key(entry.key):
                continue
            if entry.key in listed:
                raise CacheCorrupted(f"{self.kind}: full sync lists key {entry.key!r} twice")
            listed.add(entry.key)
            cached = self._store.get(entry.key)
            if cached is not None and cached.meta.revision == entry.revision:
                continue  # the same KV version: nothing to decode again
            obj = self._decode(entry.key, entry.value, entry.revision, entry.create_revision)
            if obj is not None:
                changed.append(obj)
            else:  # an earlier valid version, if cached, stays
                rejected[entry.key] = self._rejected[entry.key]
        self._rejected = rejected
        try:
            summary = self._store.sync_listing(changed, listed, listing.revision)
        except CacheCorrupted:
            raise
        except Exception as exc:
            raise CacheCorrupted(
                f"dispatcher {self.kind}: full sync at revision {listing.revision} failed: {exc!r}"
            ) from exc
        logger.info(
            "dispatcher %s: full sync at revision %d, %d objects "
            "(%d added, %d changed, %d deleted, %d rejected), epoch %d",
            self.kind,
            listing.revision,
            summary.objects,
            summary.added,
            summary.changed,
            summary.deleted,
            len(rejected),
            self._store.epoch,
        )
        self.ready.set()

    # watching

    async def _follow(self, start_revision: int) -> None:
        """Apply watch events until a re-list is due."""
        if self._catch_up_wanted:
            logger.info("dispatcher %s: re-listing to catch up to a wanted revision", self.kind)
            return
        events = self._kv.watch(self.kind, start_revision)
        try:
            async with asyncio.timeout(self._settings.resync_interval) as timer:
                self._resync_timer = timer
                async for event in events:
                    self._apply(event)
        except TimeoutError:
            if not timer.expired():
                raise
            reason = "to catch up to a wanted revision" if self._catch_up_wanted else "periodic"
            logger.info(
                "dispatcher %s: resync (%s) at revision %d", self.kind, reason, self.revision
            )
        except RevisionCompacted as exc:
            logger.warning(
                "dispatcher %s: watch from revision %d is compacted (%s); re-listing",
                self.kind,
                start_revision,
                exc,
            )
        except KvError as exc:
            logger.warning(
                "dispatcher %s: watch from revision %d ended: %s; re-listing",
                self.kind,
                start_revision,
                exc,
            )
        finally:
            self._resync_timer = None
            await _close(events)

    def _catch_up(self, revision: int) -> None:
        """A reader waits for ``revision``: re-list now (the watch gives no progress marks)."""
        logger.debug(
            "dispatcher %s: a reader waits for revision %d, store is at %d",
            self.kind,
            revision,
            self.revision,
        )
        self._catch_up_wanted = True
        timer = self._resync_timer
        if timer is not None and not timer.expired():  # an expiring timer re-lists anyway
            timer.reschedule(asyncio.get_running_loop().time())

    def _apply(self, event: WatchEvent) -> None:
        if event.kind != self.kind:
            raise CacheCorrupted(
                f"dispatcher {self.kind}: watch delivered {event.kind}/{event.key} "
                f"at revision {event.revision}"
            )
        if event.revision < self.revision:
            raise CacheCorrupted(
                f"dispatcher {self.kind}: watch event {event.type} {event.key} at revision "
                f"{event.revision} is older than the cache, which reflects revision "
                f"{self.revision}: the watch replayed or skipped history"
            )
        try:
            if is_progress_key(event.key):
                self._store.advance_revision(event.revision)
            elif event.type is EventType.PUT:
                with cache_apply(self.kind, event.key, "put", event.revision):
                    self._apply_put(event)
            elif event.type is EventType.DELETE:
                self._rejected.pop(event.key, None)
                with cache_apply(self.kind, event.key, "delete", event.revision):
                    self._store.apply_delete(event.key, event.revision)
                logger.debug(
                    "dispatcher %s: deleted %s at revision %d", self.kind, event.key, event.revision
                )
            else:
                raise CacheCorrupted(  # noqa: TRY301
                    f"dispatcher {self.kind}: unknown watch event type {event.type!r}"
                )
        except CacheCorrupted:
            raise
        except Exception as exc:
            raise CacheCorrupted(
                f"dispatcher {self.kind}: applying {event.type} {event.key} at revision "
                f"{event.revision} failed: {exc!r}"
            ) from exc

    def _apply_put(self, event: WatchEvent) -> None:
        obj = self._decode(event.key, event.value, event.revision, event.create_revision)
        if obj is None:
            self._store.advance_revision(event.revision)  # the earlier version, if any, stays
            return
        self._rejected.pop(event.key, None)
        self._store.apply_put(obj)
        logger.debug("dispatcher %s: put %s at revision %d", self.kind, event.key, event.revision)

    def _decode(
        self, key: str, value: bytes, revision: int, create_revision: int
    ) -> StoredObject[SpecT, StatusT] | None:
        try:
            obj = decode_object(
                self.kind,
                key,
                value,
                revision=revision,
                create_revision=create_revision,
                seen=self._seen,
            )
        except InvalidObject as exc:
            known = self._rejected.get(key)
            if known is None or known.revision != revision:
                kept = "keeping the earlier version" if key in self._store else "left out"
                logger.warning(
                    "dispatcher %s: invalid value for key %s at revision %d, %s: %s",
                    self.kind,
                    key,
                    revision,
                    kept,
                    exc.reason,
                )
            self._rejected[key] = RejectedValue(key, revision, exc.reason)
            return None
        return cast("StoredObject[SpecT, StatusT]", obj)


def start_dispatchers(
    cache: GlobalStore,
    kv: KvStore,
    supervisor: Supervisor,
    *,
    settings: DispatcherSettings | None = None,
) -> dict[Kind, Dispatcher[Any, Any]]:
    """One dispatcher per kind of ``cache``, each started under ``supervisor``."""
    dispatchers: dict[Kind, Dispatcher[Any, Any]] = {}
    for kind in cache.kinds:
        dispatcher = Dispatcher(kv, cache.local_store(kind), settings=settings)
        dispatcher.start(supervisor)
        dispatchers[kind] = dispatcher
    return dispatchers


async def _close(events: AsyncIterator[WatchEvent]) -> None:
    """End a watch early, if its iterator can be closed (async generators can)."""
    aclose = getattr(events, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:
        logger.warning("closing a watch failed", exc_info=True)
