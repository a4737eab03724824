"""``AdminClient``: the admin facade over the public API of a set of SC replicas."""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import quote

from ha_sc.client.errors import ApiError
from ha_sc.client.transport import Transport
from ha_sc.client.watch import WatchStream
from ha_sc.model.kinds import Kind, Partition, Spu, Topic
from ha_sc.model.spu import CustomSpuSpec
from ha_sc.model.topic import TopicSpec
from ha_sc.protocol.api_wire import (
    API_PREFIX,
    LeaderReport,
    WireError,
    object_from_json,
)

PROVISION_MARGIN = 5.0
"""Seconds a create waits for its answer beyond the provisioning wait it asks for."""


class AdminClient:
    """Topics, partitions and SPUs of one cluster, through any of its replicas.

    ``endpoints`` are the replicas' public addresses (``host:port``), asked with
    hedged requests (see ``transport``); ``timeout`` bounds each call (a topic
    create also waits up to ``timeout`` s for provisioning). Use ``async with`` or
    call ``close``.
    """

    def __init__(
        self,
        endpoints: Iterable[str],
        *,
        timeout: float = 10.0,
        token: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``token``: the bearer token sent with every call (an SC started with
        ``--api-tokens`` needs one: read for reads, admin for writes); ``tls``: the
        client context HTTPS replicas are checked with (``client_context``)."""
        self._transport = Transport(list(endpoints), timeout=timeout, token=token, tls=tls)
        self._timeout = timeout

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._transport.close()

    # topics

    async def create_topic(self, name: str, spec: TopicSpec, *, wait: float | None = None) -> Topic:
        """Create a topic; returns it once provisioned (waits up to ``wait`` s, default
        the client's timeout). Raises ApiError if it cannot be (then nothing is kept)."""
        wait = self._timeout if wait is None else wait
        body = {"name": name, "spec": spec.model_dump(mode="json", exclude_none=True)}
        doc = await self._transport.call(
            "POST",
            f"{API_PREFIX}/topics",
            body=body,
            params={"timeout": f"{wait:g}"},
            write=True,
            timeout=self._timeout + wait + PROVISION_MARGIN,
        )
        return cast("Topic", _object(Kind.TOPIC, doc))

    async def list_topics(self) -> list[Topic]:
        return cast("list[Topic]", await self._list(Kind.TOPIC, f"{API_PREFIX}/topics"))

    async def describe_topic(self, name: str) -> Topic:
        doc = await self._transport.call("GET", _path("topics", name))
        return cast("Topic", _object(Kind.TOPIC, doc))

    async def delete_topic(self, name: str) -> None:
        """Delete a topic and its partitions."""
        await self._transport.call("DELETE", _path("topics", name), write=True)

    # partitions

    async def list_partitions(self, topic: str | None = None) -> list[Partition]:
        params = None if topic is None else {"topic": topic}
        items = await self._list(Kind.PARTITION, f"{API_PREFIX}/partitions", params)
        return cast("list[Partition]", items)

    # spus

    async def list_spus(self) -> list[Spu]:
        return cast("list[Spu]", await self._list(Kind.SPU, f"{API_PREFIX}/spus"))

    async def register_spu(self, spec: CustomSpuSpec, *, name: str | None = None) -> Spu:
        """Register a custom SPU, named ``custom-spu-<id>`` unless ``name`` is given."""
        body = {
            "name": name or f"custom-spu-{spec.id}",
            **spec.model_dump(mode="json", exclude_none=True),
        }
        doc = await self._transport.call("POST", f"{API_PREFIX}/spus", body=body, write=True)
        return cast("Spu", _object(Kind.SPU, doc))

    async def unregister_spu(self, name: str) -> None:
        await self._transport.call("DELETE", _path("spus", name), write=True)

    # cluster

    async def leader(self) -> LeaderReport:
        """Who leads, as the first replica that answers sees it."""
        doc = await self._transport.call("GET", "/leader")
        try:
            return LeaderReport.from_json(doc)
        except ValueError as exc:
            raise ApiError(502, f"malformed leader report: {exc}") from None

    def watch(
        self,
        kinds: Iterable[Kind | str] | None = None,
        *,
        idle_timeout: float = 60.0,
        heartbeats: bool = False,
    ) -> WatchStream:
        """Changes of ``kinds`` (default topics, partitions, spus) as they happen.

        Use as ``async with client.watch([...]) as stream: async for batch in stream``.
        Each connection starts with a full sync per kind; a stream that breaks (or is
        silent for ``idle_timeout`` s) reconnects to the next replica and syncs again.
        Heartbeat batches (``is_heartbeat``) are yielded only if ``heartbeats``.
        """
        return WatchStream(self._transport, kinds, idle_timeout=idle_timeout, heartbeats=heartbeats)

    async def _list(self, kind: Kind, path: str, params: dict[str, str] | None = None) -> list[Any]:
        doc = await self._transport.call("GET", path, params=params)
        items = doc.get("items") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise ApiError(502, f"malformed {kind.value} list")
        return [_object(kind, item) for item in items]


def _path(collection: str, name: str) -> str:
    return f"{API_PREFIX}/{collection}/{quote(name, safe='')}"


def _object(kind: Kind, doc: Any) -> Any:
    try:
        return object_from_json(kind, doc)
    except (WireError, ValueError) as exc:
        raise ApiError(502, f"malformed {kind.value} object: {exc}") from None
