"""The public API every SC replica serves (default port 9003).

Reads come from the replica's warm cache; writes are made by the leader, fenced
by its epoch; a standby answers a write with 307 to the leader's address.
"""

from ha_sc.api.app import ROUTES, ApiServer, create_app
from ha_sc.api.openapi import openapi_document
from ha_sc.api.wire import API_PREFIX, DEFAULT_PORT

__all__ = ["API_PREFIX", "DEFAULT_PORT", "ROUTES", "ApiServer", "create_app", "openapi_document"]
