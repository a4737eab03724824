"""The API's server span honours the caller's traceparent; produce spans are sampled."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.trace import SpanKind, StatusCode

from ha_sc.protocol.data import DataError, ErrorCode, ProduceResponse
from ha_sc.telemetry.tracing_http import tracing_middleware
from ha_sc.telemetry.tracing_produce import ProduceSampling, end_produce
from tests.tracing_capture import by_name, captured_spans

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


async def ok(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def broken(_: web.Request) -> web.Response:
    raise web.HTTPServiceUnavailable(text="no leader")


async def test_a_request_is_a_server_span_under_the_callers_traceparent() -> None:
    app = web.Application(middlewares=[tracing_middleware])
    app.router.add_get("/api/v1/topics/{name}", ok)
    app.router.add_post("/api/v1/topics", broken)
    with captured_spans() as exported:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            answer = await client.get(
                "/api/v1/topics/orders",
                headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
            )
            assert answer.status == 200
            assert (await client.post("/api/v1/topics")).status == 503
        spans = exported.get_finished_spans()
    (get,) = by_name(spans, "GET /api/v1/topics/{name}")
    assert get.kind is SpanKind.SERVER
    assert f"{get.context.trace_id:032x}" == CALLER_TRACE
    assert get.parent is not None and f"{get.parent.span_id:016x}" == CALLER_SPAN
    (post,) = by_name(spans, "POST /api/v1/topics")
    assert post.parent is None  # no traceparent sent: a trace of its own
    assert post.status.status_code is StatusCode.ERROR
    assert dict(post.attributes or {})["http.response.status_code"] == 503


def test_produce_requests_are_traced_at_the_ratio_and_end_with_the_answer() -> None:
    with captured_spans() as exported:
        assert ProduceSampling(0.0).start("orders-0", 1, 100) is None
        every = ProduceSampling(1.0)
        span = every.start("orders-0", 2, 100)
        assert span is not None
        end_produce(span, ProduceResponse(id=2, base_offset=40))
        failed = every.start("orders-0", 3, 100)
        assert failed is not None
        error = DataError(code=ErrorCode.NOT_LEADER, message="spu 5002 leads")
        end_produce(failed, ProduceResponse(id=3, error=error))
        spans = exported.get_finished_spans()
    first, second = by_name(spans, "produce orders-0")
    assert dict(first.attributes or {})["offset"] == 40
    assert second.status.status_code is StatusCode.ERROR
    assert "spu 5002 leads" in (second.status.description or "")
    # tracing off: even a ratio of 1 makes no span
    assert ProduceSampling(1.0).start("orders-0", 4, 100) is None
