"""Client of the SC's public API: the admin facade and where to find the cluster."""

from ha_sc.api.wire import LeaderInfo, LeaderReport, WatchBatch
from ha_sc.client.admin import AdminClient
from ha_sc.client.discovery import cluster_file, find_endpoints
from ha_sc.client.errors import ApiError, NoEndpoints, Unreachable
from ha_sc.client.watch import WatchStream

__all__ = [
    "AdminClient",
    "ApiError",
    "LeaderInfo",
    "LeaderReport",
    "NoEndpoints",
    "Unreachable",
    "WatchBatch",
    "WatchStream",
    "cluster_file",
    "find_endpoints",
]
