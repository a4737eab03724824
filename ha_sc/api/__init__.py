"""The public API every SC replica serves (default port 9003).

Reads come from the replica's warm cache; writes are made by the leader, fenced
by its epoch; a standby answers a write with 307 to the leader's address.

The server side (``ApiServer``, routes, the OpenAPI document) is imported on first
use: clients need only ``ha_sc.protocol.api_wire``, and loading the aiohttp server
application would add about a second to every CLI command.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ha_sc.protocol.api_wire import API_PREFIX, DEFAULT_PORT

if TYPE_CHECKING:
    from ha_sc.api.app import ROUTES, ApiServer, create_app
    from ha_sc.api.openapi import openapi_document

_LAZY = {
    "ROUTES": "ha_sc.api.app",
    "ApiServer": "ha_sc.api.app",
    "create_app": "ha_sc.api.app",
    "openapi_document": "ha_sc.api.openapi",
}

__all__ = ["API_PREFIX", "DEFAULT_PORT", "ROUTES", "ApiServer", "create_app", "openapi_document"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
