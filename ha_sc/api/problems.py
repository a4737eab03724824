"""Errors as JSON: ``{"error": "...", "field": "..."}`` with the right status."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ha_sc.kv.api import KvError, KvUnavailable, StaleGuard
from ha_sc.model.codec import format_validation_error
from ha_sc.protocol.api_wire import error_json, first_error_field

log = logging.getLogger("ha_sc.api")

M = TypeVar("M", bound=BaseModel)

FENCED_REFUSED: web.AppKey[Callable[[], None]] = web.AppKey("fenced_refused")
"""Called for each API write the KV refused for a newer epoch (the replica's metrics)."""

RETRY_AFTER_SECONDS = 1
"""Sent with every 503 that is safe to retry: nothing was written."""


class ApiProblem(Exception):
    """Raised by a handler; the middleware turns it into the JSON response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        retry: bool = False,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = dict(headers or {})
        if retry:
            self.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        self.extra = dict(extra or {})

    def response(self) -> web.Response:
        body = {**error_json(self.message, self.field), **self.extra}
        return web.json_response(body, status=self.status, headers=self.headers)


def not_found(what: str, name: str) -> ApiProblem:
    return ApiProblem(404, f"{what} {name!r} not found", field="name")


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or a 400."""
    try:
        return await request.json(loads=json.loads)
    except ValueError as exc:
        raise ApiProblem(400, f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiProblem(400, "request body is not valid JSON: nested too deep") from None


def parse_body(model: type[M], body: Any) -> M:
    """Validate ``body`` as ``model``, or a 400 naming the first field at fault."""
    if not isinstance(body, dict):
        raise ApiProblem(400, "request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ApiProblem(400, format_validation_error(exc), field=first_error_field(exc)) from None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _nothing() -> None:
    pass


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON; KV trouble is a 503."""
    try:
        return await handler(request)
    except ApiProblem as problem:
        return problem.response()
    except StaleGuard:
        request.app.get(FENCED_REFUSED, _nothing)()
        return ApiProblem(503, "leadership changed, retry", retry=True).response()
    except KvUnavailable as exc:
        return ApiProblem(503, f"the KV store is unavailable: {exc}").response()
    except KvError as exc:
        log.warning("%s %s: KV error: %s", request.method, request.path, exc)
        return ApiProblem(500, f"KV error: {exc}").response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allowed = exc.headers.get("Allow")
        if exc.status == 404:
            message = f"no such endpoint: {request.method} {request.path}"
        elif exc.status == 405:
            message = f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
        else:
            message = exc.reason
        headers = {"Allow": allowed} if allowed else {}
        return web.json_response(error_json(message), status=exc.status, headers=headers)
    except Exception as exc:
        log.exception("%s %s failed", request.method, request.path)
        return ApiProblem(500, f"internal error: {exc!r}").response()
