"""Running a produce or consume command: find the cluster, open a ``StreamClient``,
turn the client's errors into a clear message and exit status 1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import click

from ha_sc.cli.output import cluster_endpoints, cluster_tls, cluster_token
from ha_sc.client.data_errors import StreamError
from ha_sc.client.stream_client import StreamClient

T = TypeVar("T")


def run_stream(endpoints: Sequence[str], action: Callable[[StreamClient], Awaitable[T]]) -> T:
    """Run ``action`` with a streaming client of the cluster; Ctrl-C ends it quietly."""
    found = cluster_endpoints(endpoints)
    token = cluster_token()
    tls = cluster_tls()

    async def main() -> T:
        async with StreamClient(found, token=token, tls=tls) as client:
            return await action(client)

    try:
        return asyncio.run(main())
    except StreamError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.exceptions.Exit(130) from None
