"""Whether the cache shows a pass's own writes yet (their watch echoes).

A pass planned before the echoes of the last one are in would decide again from the
objects those writes replaced, and its writes would be refused as stale: a commit each
for nothing. An action is echoed once the cached object is no longer the one the
reducer read: created, deleted, or at another revision. A write the KV refused counts
too, since the object that made it stale is on its way to the cache as well.
"""

from __future__ import annotations

from collections.abc import Iterable

from ha_sc.controllers.actions import Action, CreateObject, DeleteObject
from ha_sc.store import GlobalStore


def echoed(action: Action, cache: GlobalStore) -> bool:
    """Whether ``cache`` shows ``action``'s write (or the change that made it stale)."""
    current = cache.view(action.kind).get(action.key)
    if isinstance(action, CreateObject):
        return current is not None
    if current is None:
        return True
    if isinstance(action, DeleteObject) and action.revision is None:
        return False
    return bool(current.meta.revision != action.revision)


def not_echoed(actions: Iterable[Action], cache: GlobalStore) -> list[Action]:
    """The actions whose writes ``cache`` does not show yet."""
    return [action for action in actions if not echoed(action, cache)]
