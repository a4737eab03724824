"""Waiting for the local cache to show what a write did."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterable
from typing import Any

from election.term import Term
from ha_sc.store import StoreView
from ha_sc.tasks import until_first


async def until_reflected(view: StoreView[Any, Any], revision: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for ``view`` to reflect KV revision ``revision``.

    For the revision of a write to this very kind, whose watch echo moves the
    store: no re-list is requested (``StoreView.wait_for_revision`` would).
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while view.revision < revision:
                await view.wait_for_change(view.epoch)
    return view.revision >= revision


async def until_changed(
    views: Iterable[tuple[StoreView[Any, Any], int]],
    *,
    timeout: float,
    term: Term | None = None,
    closing: asyncio.Event | None = None,
) -> None:
    """Return when a view changes after its epoch, ``term`` is lost, ``closing`` is set,
    or ``timeout`` s pass, whichever comes first."""
    waits: dict[str, Coroutine[Any, Any, object]] = {
        f"api-await-{view.kind}": view.wait_for_change(epoch) for view, epoch in views
    }
    if term is not None:
        waits["api-await-term-lost"] = term.lost.wait()
    if closing is not None:
        waits["api-await-closing"] = closing.wait()
    await until_first(waits, timeout=timeout)
