"""schemathesis against the served OpenAPI description: the real API app on loopback in
this process (a memory KV, this replica leading), each operation called with examples
generated from its schema, valid and not. No answer is a 500, and a 5xx is one the
description names (503 unavailable, 504 a topic not provisioned: no SPU runs here).
The watch stream is left out (it streams until closed)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.unit.test_api_handlers import Replica

EXAMPLES = 50
"""Examples per operation (at most; fewer when the schema allows fewer): about 15
operations, a few hundred requests, under 20 s."""


class ServedApi:
    """The API app of a leading replica, served from its own event loop thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="api under fuzz")
        self.base = ""
        self._replica: Replica | None = None

    def __enter__(self) -> ServedApi:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        replica = self._replica = Replica()
        await replica.server.start()
        replica.lead()
        self.base = replica.base

    async def _stop(self) -> None:
        assert self._replica is not None
        await self._replica.server.stop()
        await self._replica.supervisor.stop()

    def __exit__(self, *_: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()


@pytest.fixture(scope="module")
def served() -> Iterator[ServedApi]:
    with ServedApi() as api:
        yield api


def documented(operation: Any) -> set[int]:
    return {int(code) for code in operation.definition.raw.get("responses", {}) if code.isdigit()}


def operations(base: str) -> list[Any]:
    doc = requests.get(f"{base}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(doc)
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path != "/api/v1/watch":
            found.append(operation)
    return found


def fuzz(operation: Any, base: str, problems: list[str]) -> Counter[int]:
    """Call ``operation`` with EXAMPLES generated requests; note each server error; the
    answers' statuses."""
    statuses: Counter[int] = Counter()
    allowed = documented(operation)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def call(case: Any) -> None:
        response = case.call(base_url=base, timeout=15, allow_redirects=False)
        status = response.status_code
        statuses[status] += 1
        if status == 500 or (status >= 500 and status not in allowed):
            problems.append(
                f"{operation.method.upper()} {case.formatted_path} -> {status}: "
                f"{response.text[:200]}"
            )

    call()
    return statuses


def test_the_described_api_answers_every_generated_request_without_a_server_error(
    served: ServedApi,
) -> None:
    found = operations(served.base)
    assert len(found) >= 10
    problems: list[str] = []
    statuses: Counter[int] = Counter()
    for operation in found:
        statuses += fuzz(operation, served.base, problems)
    assert problems == []
    # the examples reached the handlers: accepted ones and refused ones
    assert sum(statuses.values()) >= len(found) * 5
    assert statuses[200] > 0 and sum(n for s, n in statuses.items() if 400 <= s < 500) > 0
