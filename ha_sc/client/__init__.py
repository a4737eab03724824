"""Clients of the cluster: the admin facade over the SC's public API, the streaming
facade (producers and consumers talking to SPUs), and where to find the cluster.

Also re-exported here, so a user (and the chaos harness) needs no other import: the
specs and states the admin client takes and returns (from ``ha_sc.model``) and the
produce/consume options (from ``ha_sc.protocol.data``)."""

from ha_sc.client.admin import AdminClient
from ha_sc.client.consumer import RecordStream, TopicConsumer
from ha_sc.client.consumer_record import ConsumerRecord
from ha_sc.client.data_errors import (
    ConsumeFailed,
    DeliveryTimeout,
    ProduceFailed,
    StreamError,
    UnknownTopic,
)
from ha_sc.client.discovery import cluster_file, find_endpoints
from ha_sc.client.errors import ApiError, NoEndpoints, Unreachable
from ha_sc.client.offsets import Offset
from ha_sc.client.producer import TopicProducer
from ha_sc.client.producer_batch import BulkAck, Delivered, RecordAck
from ha_sc.client.stream_client import StreamClient
from ha_sc.client.stream_settings import ConsumerSettings, ProducerSettings
from ha_sc.client.watch import WatchStream
from ha_sc.model import (
    CustomSpuSpec,
    Endpoint,
    PartitionResolution,
    SpuResolution,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
)
from ha_sc.protocol.api_wire import LeaderInfo, LeaderReport, WatchBatch
from ha_sc.protocol.data import Acks, Isolation

__all__ = [
    "Acks",
    "AdminClient",
    "ApiError",
    "BulkAck",
    "ConsumeFailed",
    "ConsumerRecord",
    "ConsumerSettings",
    "CustomSpuSpec",
    "Delivered",
    "DeliveryTimeout",
    "Endpoint",
    "Isolation",
    "LeaderInfo",
    "LeaderReport",
    "NoEndpoints",
    "Offset",
    "PartitionResolution",
    "ProduceFailed",
    "ProducerSettings",
    "RecordAck",
    "RecordStream",
    "SpuResolution",
    "StreamClient",
    "StreamError",
    "TopicConsumer",
    "TopicProducer",
    "TopicReplicas",
    "TopicResolution",
    "TopicSpec",
    "UnknownTopic",
    "Unreachable",
    "WatchBatch",
    "WatchStream",
    "cluster_file",
    "find_endpoints",
]
