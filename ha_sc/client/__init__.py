"""Clients of the cluster: the admin facade over the SC's public API, the streaming
facade (producers and consumers talking to SPUs), and where to find the cluster."""

from ha_sc.api.wire import LeaderInfo, LeaderReport, WatchBatch
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

__all__ = [
    "AdminClient",
    "ApiError",
    "BulkAck",
    "ConsumeFailed",
    "ConsumerRecord",
    "ConsumerSettings",
    "Delivered",
    "DeliveryTimeout",
    "LeaderInfo",
    "LeaderReport",
    "NoEndpoints",
    "Offset",
    "ProduceFailed",
    "ProducerSettings",
    "RecordAck",
    "RecordStream",
    "StreamClient",
    "StreamError",
    "TopicConsumer",
    "TopicProducer",
    "UnknownTopic",
    "Unreachable",
    "WatchBatch",
    "WatchStream",
    "cluster_file",
    "find_endpoints",
]
