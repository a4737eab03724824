"""How a producer and a consumer behave: typed settings, one docstring per field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ha_sc.protocol.data import Acks, Isolation


class ProducerSettings(BaseModel):
    """Batching, acknowledgement and retries of a ``TopicProducer``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    acks: Acks = Acks.LEADER
    """``leader``: acknowledged once on the leader's log; ``all``: once every in-sync
    replica has it (committed)."""
    batch_bytes: int = Field(default=1024 * 1024, gt=0)
    """A batch is closed before its payload would grow past this many bytes (a single
    larger record still gets a batch of its own)."""
    batch_records: int = Field(default=65536, gt=0)
    """A batch is closed once it holds this many records."""
    request_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    """Bytes of batches one produce request carries at most (at least one batch): the
    next request takes as many of the queued batches as fit, so a request carries more
    than one batch when records come faster than the round trip."""
    max_in_flight: int = Field(default=4, ge=1)
    """Produce requests sent to a partition's leader before the first is answered
    (pipelining; order is kept, and after a failure the requests in flight are sent
    again one at a time): the client encodes, the leader writes and the followers
    replicate at the same time. 1: one request at a time."""
    linger: float = Field(default=0.005, ge=0)
    """Seconds a partly filled batch waits for more records before it is sent (when the
    pipeline has room for another request; else until it has)."""
    buffer_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Bytes of records waiting to be acknowledged beyond which ``send`` waits."""
    delivery_timeout: float = Field(default=60.0, gt=0)
    """Seconds from a batch's first record until the producer gives up retrying it and
    its records' acks raise ``DeliveryTimeout``."""
    ack_timeout: float = Field(default=5.0, gt=0)
    """acks=all: seconds the leader waits for the in-sync replicas (``timeout_ms``)."""
    request_timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for an SPU's answer beyond ``ack_timeout`` before the connection
    counts as lost and the batch is retried on a new one."""
    connect_timeout: float = Field(default=2.0, gt=0)
    """Seconds to wait for a TCP connection to an SPU."""
    retry_backoff: float = Field(default=0.02, gt=0)
    """Seconds before the first retry of a batch; doubles with each retry."""
    retry_backoff_max: float = Field(default=0.25, gt=0)
    """The longest pause between retries."""

    @model_validator(mode="after")
    def _backoff_ordered(self) -> ProducerSettings:
        if self.retry_backoff > self.retry_backoff_max:
            raise ValueError("retry_backoff must not exceed retry_backoff_max")
        return self


class ConsumerSettings(BaseModel):
    """Fetching and leader-following of a consumer stream."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    isolation: Isolation = Isolation.COMMITTED
    """``committed``: only records below the high watermark (every in-sync replica has
    them); ``uncommitted``: up to the leader's log end."""
    max_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    """Bytes of batches asked for per fetch."""
    wait: float = Field(default=1.0, ge=0)
    """Seconds a fetch waits at the SPU for new records when there are none (long poll)."""
    request_timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for an SPU's answer beyond ``wait``."""
    connect_timeout: float = Field(default=2.0, gt=0)
    """Seconds to wait for a TCP connection to an SPU."""
    unavailable_timeout: float = Field(default=60.0, gt=0)
    """Seconds without a successful fetch (no leader reachable) before the stream raises
    ``ConsumeFailed``."""
    retry_backoff: float = Field(default=0.02, gt=0)
    """Seconds before the first retry of a fetch; doubles with each retry."""
    retry_backoff_max: float = Field(default=0.25, gt=0)
    """The longest pause between retries."""
