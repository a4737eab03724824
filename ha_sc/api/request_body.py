"""A request's body must arrive within a set time.

The connection guard (``ha_sc.http_site``) times a request's headers; a client that
then sends its body a byte at a time would hold a request open, and its connection,
for as long as it likes. This middleware reads the body (at most the API's body limit)
within ``timeout`` before any handler runs; past it the answer is 408 and the
connection is closed. A body over the limit is answered 413.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Middleware

from ha_sc.api.problems import ApiProblem, Handler

log = logging.getLogger("ha_sc.api")


def body_deadline(timeout: float) -> Middleware:
    """The middleware; ``timeout`` seconds for a whole body."""
    if timeout <= 0:
        raise ValueError(f"the body timeout must be > 0, not {timeout}")

    @web.middleware
    async def read_in_time(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists:
            return await handler(request)
        try:
            async with asyncio.timeout(timeout):
                await request.read()  # kept: the handlers' reads take it from memory
        except TimeoutError:
            log.warning(
                "public API: %s %s from %s: the body did not arrive within %g s; closing "
                "the connection",
                request.method,
                request.path,
                request.remote,
                timeout,
            )
            response = ApiProblem(408, f"the body did not arrive within {timeout:g} s").response()
            response.force_close()
            await response.prepare(request)
            await response.write_eof()
            request.protocol.force_close()  # no waiting for the rest of the body (lingering)
            return response
        except web.HTTPRequestEntityTooLarge as too_large:
            return ApiProblem(413, too_large.reason).response()
        return await handler(request)

    return read_in_time
