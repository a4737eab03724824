"""The replica's cache: per-kind stores with spec/status epochs, fed by dispatchers."""

from ha_sc.store.changes import ChangeFocus, Changes
from ha_sc.store.dispatcher import Dispatcher, RejectedValue, start_dispatchers
from ha_sc.store.epoch_map import DEFAULT_MAX_TOMBSTONES, LocalStore, SyncSummary
from ha_sc.store.errors import CacheCorrupted
from ha_sc.store.global_store import GlobalStore, partition_topic
from ha_sc.store.listener import ChangeListener
from ha_sc.store.settings import DispatcherSettings
from ha_sc.store.view import EpochEntry, StoreView

__all__ = [
    "DEFAULT_MAX_TOMBSTONES",
    "CacheCorrupted",
    "ChangeFocus",
    "ChangeListener",
    "Changes",
    "Dispatcher",
    "DispatcherSettings",
    "EpochEntry",
    "GlobalStore",
    "LocalStore",
    "RejectedValue",
    "StoreView",
    "SyncSummary",
    "partition_topic",
    "start_dispatchers",
]
