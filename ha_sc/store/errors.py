"""The one error a cache may raise: it can no longer be trusted."""

from __future__ import annotations


class CacheCorrupted(RuntimeError):
    """A change could not be applied to the cache, or arrived out of order.

    The cache may now differ from the KV. Nothing recovers from this in place:
    the replica stops (the supervisor treats it as fatal) and a fresh process
    rebuilds its cache from a full listing, rather than serve or lead with a
    wrong one.
    """
