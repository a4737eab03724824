"""``StreamClient``: the data-plane facade of one cluster, producers and consumers.

It keeps one ``ClusterMetadata`` (partition leaders, SPU addresses) learned from the
SC replicas' public API and shared by every producer and consumer it makes::

    async with StreamClient(find_endpoints()) as client:
        producer = await client.topic_producer("orders")
        ack = await producer.send(b"hello")
        await producer.close()
        async for record in client.consumer("orders").stream(Offset.beginning()):
            ...
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Self

from ha_sc.client.admin import AdminClient
from ha_sc.client.closing import ClosedOnExit
from ha_sc.client.consumer import TopicConsumer
from ha_sc.client.metadata import ClusterMetadata
from ha_sc.client.producer import TopicProducer
from ha_sc.client.stream_settings import ConsumerSettings, ProducerSettings


class StreamClient(ClosedOnExit):
    """``endpoints``: SC replicas' public addresses; ``sc_timeout`` bounds each call to
    them; ``watch``: follow metadata changes as they happen (else only on errors);
    ``token``: the public API bearer token, if the SC needs one; ``tls``: the client
    context for replicas and SPUs serving TLS (``ha_sc.protocol.tls.client_context``)."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        sc_timeout: float = 3.0,
        watch: bool = True,
        token: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.admin = AdminClient(endpoints, timeout=sc_timeout, token=token, tls=tls)
        self.metadata = ClusterMetadata(self.admin, watch=watch, tls=tls)
        self._sc_timeout = sc_timeout
        self._started = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def start(self) -> None:
        """Start following the metadata (``async with`` does it)."""
        if not self._started:
            self._started = True
            await self.metadata.start()

    async def close(self) -> None:
        await self.metadata.close()
        await self.admin.close()

    async def topic_producer(
        self, topic: str, settings: ProducerSettings | None = None
    ) -> TopicProducer:
        """A producer of ``topic``; raises UnknownTopic if the SC does not know it."""
        await self.start()
        return await TopicProducer.create(
            topic, self.metadata, settings, timeout=self._sc_timeout * 2
        )

    def consumer(self, topic: str, settings: ConsumerSettings | None = None) -> TopicConsumer:
        return TopicConsumer(topic, self.metadata, settings, timeout=self._sc_timeout * 2)
