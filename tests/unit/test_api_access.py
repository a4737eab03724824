"""Public API bearer tokens: every route with no token, an unknown one, a read token
and an admin token, through a loopback server; the token file's refusals."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from ha_sc.api import ApiServer
from ha_sc.api.access import (
    OPEN_PATHS,
    Role,
    Verdict,
    bearer_token,
    decide,
    parse_api_tokens,
)
from ha_sc.api.app import ROUTES
from ha_sc.client import AdminClient, ApiError
from ha_sc.secret_file import SecretFileError
from tests.unit.test_api_handlers import Replica

READ_TOKEN = "read-token-" + "r" * 24
ADMIN_TOKEN = "admin-token-" + "a" * 24
UNKNOWN_TOKEN = "unknown-token-" + "u" * 24
TOKENS = parse_api_tokens(f"# role token\nread {READ_TOKEN}\n\nadmin {ADMIN_TOKEN}\n", "test")

CALLERS: dict[str, str | None] = {
    "no token": None,
    "unknown": UNKNOWN_TOKEN,
    "read": READ_TOKEN,
    "admin": ADMIN_TOKEN,
}


def _expected(method: str, path: str, caller: str) -> int | None:
    """401 or 403 where the caller is refused; None where the handler answers."""
    if path in OPEN_PATHS:
        return None
    if caller in ("no token", "unknown"):
        return 401
    if caller == "read" and method != "GET":
        return 403
    return None


def _concrete(path: str) -> str:
    return path.replace("{name}", "orders").replace("{address}", "127.0.0.1:1")


@pytest.fixture
async def guarded(caplog: pytest.LogCaptureFixture) -> AsyncIterator[Replica]:
    caplog.set_level(logging.DEBUG)
    r = Replica()
    r.server = ApiServer(
        r,
        "127.0.0.1:0",
        provision_timeout=2.0,
        ready=lambda: all(d.ready.is_set() for d in r.dispatchers.values()),
        tokens=TOKENS,
    )
    await r.server.start()
    r.lead()
    try:
        yield r
    finally:
        await r.server.stop()
        await r.supervisor.stop()


ROUTE_CASES = [
    (method, _concrete(path))
    for method, path, _ in ROUTES
    if path != "/cluster/step-down"  # below, last: it ends the replica's term
] + [("GET", "/metrics")]


async def test_each_role_may_do_what_it_is_given_and_no_more(
    guarded: Replica, caplog: pytest.LogCaptureFixture
) -> None:
    answered: dict[tuple[str, str, str], int] = {}
    async with aiohttp.ClientSession() as http:
        for method, path in [*ROUTE_CASES, ("POST", "/cluster/step-down")]:
            for caller, token in CALLERS.items():
                headers = {} if token is None else {"Authorization": f"Bearer {token}"}
                body = None if method == "GET" else {}
                async with http.request(
                    method,
                    guarded.base + path,
                    headers=headers,
                    json=body,
                    params={"kind": "topics"} if path.endswith("/watch") else None,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as response:
                    answered[(method, path, caller)] = response.status
    wrong = {
        call: status
        for call, status in answered.items()
        if ((expected := _expected(*call)) is not None and status != expected)
        or (expected is None and status in (401, 403))
    }
    assert not wrong, wrong
    assert answered[("DELETE", "/api/v1/topics/orders", "admin")] == 404  # reached the handler
    for token in (READ_TOKEN, ADMIN_TOKEN, UNKNOWN_TOKEN):
        assert token not in caplog.text
    assert "refused: unknown token" in caplog.text


async def test_the_admin_client_sends_its_token(guarded: Replica) -> None:
    async with AdminClient([guarded.server.address], token=READ_TOKEN) as reader:
        assert await reader.list_topics() == []
        with pytest.raises(ApiError) as refused:
            await reader.delete_topic("orders")
        assert refused.value.status == 403
    async with AdminClient([guarded.server.address]) as anonymous:
        with pytest.raises(ApiError) as refused:
            await anonymous.list_topics()
        assert refused.value.status == 401
    async with AdminClient([guarded.server.address], token=ADMIN_TOKEN) as admin:
        with pytest.raises(ApiError) as missing:
            await admin.delete_topic("orders")
        assert missing.value.status == 404


@pytest.mark.parametrize(
    ("method", "path", "role", "verdict"),
    [
        ("GET", "/healthz", None, Verdict.ALLOWED),
        ("GET", "/metrics", None, Verdict.ALLOWED),
        ("GET", "/leader", None, Verdict.UNAUTHENTICATED),
        ("GET", "/api/v1/topics", Role.READ, Verdict.ALLOWED),
        ("POST", "/cluster/members", Role.READ, Verdict.FORBIDDEN),
        ("POST", "/cluster/members", Role.ADMIN, Verdict.ALLOWED),
        ("DELETE", "/api/v1/spus/x", Role.READ, Verdict.FORBIDDEN),
    ],
)
def test_decide(method: str, path: str, role: Role | None, verdict: Verdict) -> None:
    assert decide(method, path, role) is verdict


def test_only_a_bearer_header_carries_a_token() -> None:
    assert bearer_token(f"Bearer {READ_TOKEN}") == READ_TOKEN
    assert bearer_token(f"bearer  {READ_TOKEN} ") == READ_TOKEN
    assert bearer_token(f"Basic {READ_TOKEN}") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


def test_tokens_are_not_shown() -> None:
    assert READ_TOKEN not in repr(TOKENS)
    assert TOKENS.role_of(ADMIN_TOKEN) is Role.ADMIN
    assert TOKENS.role_of(READ_TOKEN) is Role.READ
    assert TOKENS.role_of(UNKNOWN_TOKEN) is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "no tokens"),
        (f"root {READ_TOKEN}", "line 1: expected '<read|admin> <token>'"),
        ("read short", "line 1: the token must have at least 16"),
        (f"read {READ_TOKEN}\nadmin {READ_TOKEN}", "line 2: this token appears twice"),
    ],
)
def test_a_bad_token_file_is_refused_naming_the_line(text: str, error: str) -> None:
    with pytest.raises(SecretFileError, match=error) as refused:
        parse_api_tokens(text, "f")
    assert READ_TOKEN not in str(refused.value)
