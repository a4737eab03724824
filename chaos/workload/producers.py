"""A producer of a topic just created, for the workloads."""

from __future__ import annotations

import asyncio
import time

from ha_sc.client import ProducerSettings, StreamClient, TopicProducer, UnknownTopic

START_TIMEOUT = 20.0
"""Seconds for a new topic to be Online on every replica and known to the client."""


async def producer_when_known(
    client: StreamClient, topic: str, settings: ProducerSettings
) -> TopicProducer:
    """A producer of ``topic``, asked for again while the client's metadata does not
    know the topic yet (a replica that lags the create), ``START_TIMEOUT`` at most."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            return await client.topic_producer(topic, settings)
        except UnknownTopic:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
