"""``PartitionStream``: the records of one partition from a starting offset, in order.

It asks the partition's leader (as ``ClusterMetadata`` knows it) with long-polling
fetches, one ahead: as soon as an answer arrives the next fetch is sent, and the
records of the answer are decoded while the SPU works on it. On "not leader", a lost
connection or a missing partition it finds the leader again (the SPU's hint, else the
SC) and goes on from the next offset it has not yet handed out, so no record is given
twice or skipped. With committed isolation (the default) only records below the high
watermark are handed out, so none can vanish when a follower takes over.
"""

from __future__ import annotations

import asyncio
import logging

from ha_sc.client.consumer_record import ConsumerRecord, decode_batch_records
from ha_sc.client.data_errors import ChannelClosed, ConsumeFailed, describe_data_error
from ha_sc.client.metadata import ClusterMetadata
from ha_sc.client.offsets import From, Offset, resolve
from ha_sc.client.retry_policy import CONNECTION_LOST, Decision, Next, after_error, backoff
from ha_sc.client.spu_channel import SpuChannel
from ha_sc.client.stream_settings import ConsumerSettings
from ha_sc.protocol.data import ErrorCode, FetchRequest, FetchResponse, Isolation
from ha_sc.protocol.record_batch import MalformedBatch, iter_batches

log = logging.getLogger(__name__)

PROBE_BYTES = 1
"""What the first fetch asks for: only the partition's offsets matter in its answer."""
_BEHIND = Decision(Next.RETRY, pause=True, refresh=True)


class PartitionStream:
    def __init__(
        self,
        topic: str,
        partition: int,
        start: Offset,
        metadata: ClusterMetadata,
        settings: ConsumerSettings,
        *,
        stop_at_end: bool = False,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.start = start
        self.settings = settings
        self.stop_at_end = stop_at_end
        self.next_offset: int | None = None
        """The offset of the next record to hand out, once the start is resolved."""
        self.end_offset: int | None = None
        """With ``stop_at_end``: the end seen at the start; the stream ends there."""
        self.hw = 0
        self.leo = 0
        self._metadata = metadata
        self._channel: SpuChannel | None = None
        self._ahead: int | None = None
        """The offset of the fetch sent ahead on the channel, if one is."""
        self._failures = 0
        self._failing_since: float | None = None

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"

    async def next_records(self) -> list[ConsumerRecord] | None:
        """The next records (waiting for them if need be); None once at the end."""
        if self.next_offset is None:
            await self._resolve_start()
        while True:
            offset = self.next_offset
            assert offset is not None
            if self._at_end(offset):
                return None
            response, body = await self._fetch(offset, wait=self.settings.wait)
            records, following = self._records(response, body, offset)
            self.next_offset = following
            if records:
                return records

    async def aclose(self) -> None:
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.aclose()

    def _at_end(self, offset: int) -> bool:
        return self.end_offset is not None and offset >= self.end_offset

    async def _resolve_start(self) -> None:
        response, _ = await self._fetch(0, wait=0.0, max_bytes=PROBE_BYTES, probe=True)
        committed = self.settings.isolation is Isolation.COMMITTED
        end = response.hw if committed else response.leo
        start = resolve(self.start, log_start=response.log_start, end=end)
        if self.start.origin is From.ABSOLUTE and not (response.log_start <= start <= response.leo):
            raise ConsumeFailed(
                f"partition {self.name}: offset {start} is out of range: it holds "
                f"{response.log_start} .. {response.leo - 1}"
            )
        self.next_offset = start
        if self.stop_at_end:
            self.end_offset = end
        log.debug("partition %s: reading from %d (%s)", self.name, start, self.start)

    def _records(
        self, response: FetchResponse, body: bytes, offset: int
    ) -> tuple[list[ConsumerRecord], int]:
        """The records from ``offset`` on in the answer, and the offset after them. The
        next fetch goes out before the records are decoded."""
        limit = response.hw if self.settings.isolation is Isolation.COMMITTED else None
        try:
            batches = [
                batch
                for batch in iter_batches(body)
                if batch.header.next_offset > offset
                and (limit is None or batch.header.base_offset < limit)
            ]
        except MalformedBatch as exc:
            raise ConsumeFailed(f"partition {self.name}: spu sent a bad batch: {exc}") from None
        if not batches:
            return [], offset
        following = batches[-1].header.next_offset
        if limit is not None:
            following = min(following, limit)
        self._send_ahead(following)
        records: list[ConsumerRecord] = []
        for batch in batches:
            header = batch.header
            try:
                decoded = decode_batch_records(
                    batch.payload,
                    partition=self.partition,
                    base_offset=header.base_offset,
                    timestamp_ms=header.first_timestamp_ms,
                )
            except MalformedBatch as exc:
                raise ConsumeFailed(f"partition {self.name}: bad batch: {exc}") from None
            if len(decoded) != header.record_count:
                raise ConsumeFailed(
                    f"partition {self.name}: batch at {header.base_offset} holds "
                    f"{len(decoded)} records, its header says {header.record_count}"
                )
            if offset > header.base_offset:
                del decoded[: offset - header.base_offset]
            if limit is not None and header.next_offset > limit:
                del decoded[limit - header.next_offset :]
            records.extend(decoded)
        return records, following

    def _send_ahead(self, offset: int) -> None:
        """Ask for what follows ``offset`` now, while this answer is being decoded."""
        channel = self._channel
        if channel is None or channel.closed or channel.in_flight or self._at_end(offset):
            return
        try:
            channel.post(self._request(channel, offset, wait=self.settings.wait))
        except ChannelClosed:
            return  # found out, and handled, when the next fetch is made
        self._ahead = offset

    def _request(
        self, channel: SpuChannel, offset: int, *, wait: float, max_bytes: int | None = None
    ) -> FetchRequest:
        return FetchRequest(
            id=channel.next_id(),
            topic=self.topic,
            partition=self.partition,
            offset=offset,
            max_bytes=max_bytes or self.settings.max_bytes,
            isolation=self.settings.isolation,
            wait_ms=int(wait * 1000),
        )

    async def _fetch(
        self, offset: int, *, wait: float, max_bytes: int | None = None, probe: bool = False
    ) -> tuple[FetchResponse, bytes]:
        """A good answer for ``offset``, retrying (and following the leader) until the
        unavailable timeout."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                response, body = await self._exchange(offset, wait=wait, max_bytes=max_bytes)
            except ChannelClosed as exc:
                decision, reason = CONNECTION_LOST, str(exc)
            else:
                error = response.error
                if error is None or (probe and error.code is ErrorCode.OFFSET_OUT_OF_RANGE):
                    self._failures = 0
                    self._failing_since = None
                    self.hw, self.leo = response.hw, response.leo
                    return response, body
                reason = describe_data_error(error)
                if error.code is ErrorCode.OFFSET_OUT_OF_RANGE:
                    if response.log_start > offset:
                        log.warning(
                            "partition %s: records %d .. %d are gone (retention); going on from %d",
                            self.name,
                            offset,
                            response.log_start - 1,
                            response.log_start,
                        )
                        self.next_offset = offset = response.log_start
                        continue
                    decision = _BEHIND  # a new leader not yet caught up
                else:
                    decision = after_error(error)
                    if error.code is ErrorCode.NOT_LEADER and error.leader is not None:
                        self._metadata.leader_moved(
                            self.topic, self.partition, error.leader, error.leader_address
                        )
            if decision.refresh:
                self._metadata.request_refresh()
            if decision.next in (Next.FAIL, Next.NEW_PRODUCER):  # the latter: produce only
                raise ConsumeFailed(f"partition {self.name}: {reason}")
            now = loop.time()
            self._failures += 1
            if self._failing_since is None:
                self._failing_since = now
            if now - self._failing_since > self.settings.unavailable_timeout:
                raise ConsumeFailed(
                    f"partition {self.name}: no leader answered for "
                    f"{self.settings.unavailable_timeout:g} s; last: {reason}"
                )
            log.debug("partition %s: fetch failed (%s)", self.name, reason)
            if decision.pause:
                await asyncio.sleep(
                    backoff(
                        self._failures,
                        initial=self.settings.retry_backoff,
                        maximum=self.settings.retry_backoff_max,
                    )
                )

    async def _exchange(
        self, offset: int, *, wait: float, max_bytes: int | None
    ) -> tuple[FetchResponse, bytes]:
        channel = await self._open_channel()
        if self._ahead != offset or max_bytes is not None:
            if channel.in_flight:  # a fetch sent ahead for another offset: start afresh
                await self.aclose()
                channel = await self._open_channel()
            await channel.send(self._request(channel, offset, wait=wait, max_bytes=max_bytes))
        self._ahead = None
        response, body = await channel.receive(timeout=wait + self.settings.request_timeout)
        if not isinstance(response, FetchResponse):
            channel.close(f"spu {channel.address} answered a fetch with {response.type}")
            raise ChannelClosed(f"spu {channel.address} answered a fetch with {response.type}")
        return response, body

    async def _open_channel(self) -> SpuChannel:
        route = self._metadata.route(self.topic, self.partition)
        if route is None or route.address is None:
            raise ChannelClosed(f"leader of partition {self.name} not known")
        channel = self._channel
        if channel is not None and not channel.closed and channel.address == route.address:
            return channel
        await self.aclose()
        self._ahead = None
        self._channel = await SpuChannel.connect(
            route.address, timeout=self.settings.connect_timeout, tls=self._metadata.tls
        )
        return self._channel
