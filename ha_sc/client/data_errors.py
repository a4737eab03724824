"""What the producer and consumer raise."""

from __future__ import annotations

from ha_sc.protocol.data import DataError, ErrorCode


class StreamError(Exception):
    """Producing or consuming failed; the message says where and why."""


class UnknownTopic(StreamError):
    """The SC (or the last metadata the client has) knows no partitions of the topic."""


class ProduceFailed(StreamError):
    """A batch could not be delivered; its records were not acknowledged.

    ``code`` is the SPU's error code when an SPU refused it (None for a connection that
    kept failing); ``partition`` the partition it was for.
    """

    def __init__(
        self, message: str, *, partition: int | None = None, code: ErrorCode | None = None
    ) -> None:
        super().__init__(message)
        self.partition = partition
        self.code = code


class DeliveryTimeout(ProduceFailed):
    """Retries did not get the batch acknowledged within the delivery timeout. The batch
    may or may not have been written; the producer starts a fresh producer id on that
    partition, so a later batch is never mistaken for this one."""


class ConsumeFailed(StreamError):
    """A partition could not be read: no leader answered within the consumer's
    unavailable timeout, or the SPU refused the fetch for good."""


class ChannelClosed(StreamError):
    """The connection to an SPU ended, or did not open, or an answer did not come in
    time; whatever was in flight on it has no answer."""


def describe_data_error(error: DataError) -> str:
    """An SPU's error in words, with the leader it named."""
    text = f"{error.code.value}: {error.message}"
    if error.code is ErrorCode.NOT_LEADER and error.leader is not None:
        where = f" at {error.leader_address}" if error.leader_address else ""
        text += f" (leader: spu {error.leader}{where})"
    return text
