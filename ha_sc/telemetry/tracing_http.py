"""A server span per public API request, child of the caller's ``traceparent`` if sent."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ha_sc.telemetry.tracing_context import from_carrier, tracer

_TRACER = tracer(__name__)
_HEADERS = ("traceparent", "tracestate")


@web.middleware
async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``<METHOD> <route>`` as a server span; a 5xx answer is an error status."""
    parent = from_carrier({h: request.headers[h] for h in _HEADERS if h in request.headers})
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else request.path
    with _TRACER.start_as_current_span(
        f"{request.method} {route}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": request.method, "url.path": request.path},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            response = await handler(request)
        except web.HTTPException as answered:
            _record(span, answered.status)
            raise
        except Exception as exc:
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        _record(span, response.status)
        return response


def _record(span: Span, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
