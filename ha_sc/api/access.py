"""Who may call the public API: bearer tokens with a role (``sc run --api-tokens FILE``).

The file has one line per token, ``<role> <token>``, roles ``read`` and ``admin``; blank
lines and lines starting with ``#`` are skipped. A read needs ``read`` or ``admin``,
every write (POST, PUT, PATCH, DELETE: topics, SPUs, Raft members, step-down) needs
``admin``. ``/healthz``, ``/readyz`` and ``/metrics`` stay open to probes and scrapers.
Tokens are compared in constant time and never logged."""

from __future__ import annotations

import enum
import hmac
import logging
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from ha_sc.api.problems import ApiProblem, Handler
from ha_sc.secret_file import (
    MIN_SECRET_LENGTH,
    SecretFileError,
    is_usable_secret,
    read_private_text,
)

log = logging.getLogger("ha_sc.api")

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Answered without a token: liveness and readiness probes, metrics scrapers."""
READS = frozenset({"GET", "HEAD", "OPTIONS"})


class Role(enum.StrEnum):
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True)
class ApiTokens:
    """The tokens the API accepts and the role each one grants."""

    roles: tuple[tuple[str, Role], ...] = field(repr=False)

    def role_of(self, presented: str) -> Role | None:
        """The role of ``presented``; every token is compared, in constant time each,
        so the answer's timing tells nothing of which one (nearly) matched."""
        found: Role | None = None
        for token, role in self.roles:
            if hmac.compare_digest(token.encode(), presented.encode()):
                found = role
        return found


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"


def decide(method: str, path: str, role: Role | None) -> Verdict:
    """Whether a caller holding ``role`` (None: no valid token) may make this request."""
    if path in OPEN_PATHS:
        return Verdict.ALLOWED
    if role is None:
        return Verdict.UNAUTHENTICATED
    if method.upper() in READS or role is Role.ADMIN:
        return Verdict.ALLOWED
    return Verdict.FORBIDDEN


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if that is what it is."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def access_middleware(tokens: ApiTokens) -> Middleware:
    """Refuses, before any handler runs, a request its token does not allow: 401
    without a token or with an unknown one, 403 for a write with a read token."""

    @web.middleware
    async def check_access(request: web.Request, handler: Handler) -> web.StreamResponse:
        presented = bearer_token(request.headers.get("Authorization"))
        role = None if presented is None else tokens.role_of(presented)
        verdict = decide(request.method, request.path, role)
        if verdict is Verdict.ALLOWED:
            return await handler(request)
        if verdict is Verdict.UNAUTHENTICATED:
            log.warning(
                "%s %s from %s refused: %s",
                request.method,
                request.path,
                request.remote,
                "no bearer token" if presented is None else "unknown token",
            )
            return ApiProblem(
                401,
                "a bearer token is needed (Authorization: Bearer <token>)"
                if presented is None
                else "the bearer token is not known",
                headers={"WWW-Authenticate": 'Bearer realm="ha-sc"'},
            ).response()
        log.warning(
            "%s %s from %s refused: a read token cannot write",
            request.method,
            request.path,
            request.remote,
        )
        return ApiProblem(403, "this token may only read; writes need an admin token").response()

    return check_access


def parse_api_tokens(text: str, source: str) -> ApiTokens:
    """The tokens in ``text``; SecretFileError naming ``source`` and the line (never the
    token) if a line is not ``<role> <token>`` with a known role and a long token."""
    roles: list[tuple[str, Role]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        where = f"api token file {source}, line {number}"
        if len(words) != 2 or words[0] not in Role.__members__.values():
            raise SecretFileError(f"{where}: expected '<read|admin> <token>'")
        if not is_usable_secret(words[1]):
            raise SecretFileError(
                f"{where}: the token must have at least {MIN_SECRET_LENGTH} characters"
            )
        if any(words[1] == token for token, _ in roles):
            raise SecretFileError(f"{where}: this token appears twice")
        roles.append((words[1], Role(words[0])))
    if not roles:
        raise SecretFileError(f"api token file {source}: no tokens")
    return ApiTokens(tuple(roles))


def read_api_tokens(path: Path) -> ApiTokens:
    """The tokens in the file at ``path`` (mode 0600 or stricter)."""
    return parse_api_tokens(read_private_text(path), str(path))
