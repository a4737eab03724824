"""The launcher's HTTP session to its replicas' public APIs: the admin token if the
cluster has one, HTTPS checked with the cluster's CA if it serves TLS."""

from __future__ import annotations

import aiohttp

from ha_sc.cluster.layout import ClusterLayout


def api_session(layout: ClusterLayout, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
    tls = layout.client_tls()
    return aiohttp.ClientSession(
        timeout=timeout,
        headers=layout.api_headers(),
        connector=None if tls is None else aiohttp.TCPConnector(ssl=tls),
    )


def api_url(layout: ClusterLayout, public: str, path: str) -> str:
    """``path`` on the replica whose public address is ``public``."""
    return f"{layout.scheme}://{public}{path}"
