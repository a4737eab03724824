"""What the client commands share: reaching the cluster, and printing tables or JSON.

Tables look like Fluvio's: upper-case headers, columns two spaces apart, each
line indented by two. ``-O json`` prints the API's own JSON form of the objects.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import click

from ha_sc.client import AdminClient, ApiError, NoEndpoints, Unreachable, find_endpoints
from ha_sc.client.discovery import ENV_ENDPOINTS, ENV_TLS_CA, find_tls_ca, find_token
from ha_sc.client.transport import base_url
from ha_sc.protocol.tls import TlsError, TlsFiles, client_context
from ha_sc.secret_file import SecretFileError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_FORMATS = ("table", "json")


def output_option(command: F) -> F:
    """``-O/--output table|json``."""
    return click.option(
        "-O",
        "--output",
        type=click.Choice(OUTPUT_FORMATS),
        default="table",
        show_default=True,
        help="Output format.",
    )(command)


def split_addresses(
    ctx: click.Context, param: click.Parameter, given: Sequence[str]
) -> tuple[str, ...]:
    """A repeatable address flag whose values may also be comma lists:
    ``--sc a:1,b:2 --sc c:3`` gives ``a:1``, ``b:2``, ``c:3``."""
    return tuple(part.strip() for value in given for part in value.split(",") if part.strip())


def endpoints_option(command: F) -> F:
    """``--sc HOST:PORT`` (repeatable, or a comma list)."""
    return click.option(
        "--sc",
        "endpoints",
        multiple=True,
        metavar="HOST:PORT",
        callback=split_addresses,
        help="Public API address of an SC replica; repeat, or a comma list. Default: "
        f"${ENV_ENDPOINTS} (comma list), then the replicas in $HA_SC_DIR/cluster.json "
        "(~/.ha-sc/cluster.json).",
    )(command)


def cluster_endpoints(given: Sequence[str]) -> list[str]:
    """The SC replicas' public addresses (``--sc``, the environment, the cluster file);
    exits 1 saying what to do when there are none or one is not an address."""
    try:
        found = find_endpoints(given)
    except NoEndpoints as exc:
        raise click.ClickException(str(exc)) from None
    for endpoint in found:
        try:
            base_url(endpoint)
        except ValueError as exc:
            raise click.ClickException(f"bad SC address: {exc}") from None
    return found


def cluster_token() -> str | None:
    """The bearer token to send (``--token-file``, ``HA_SC_TOKEN_FILE``, the cluster
    file's admin token); exits 1 saying why if the file cannot be used."""
    try:
        return find_token()
    except SecretFileError as unusable:
        raise click.ClickException(str(unusable)) from None


def cluster_tls() -> ssl.SSLContext | None:
    """The client context for a cluster serving TLS (``--tls-ca``, ``HA_SC_TLS_CA``, the
    cluster file's CA), None for plain TCP; exits 1 saying why if the CA cannot be used."""
    ca = find_tls_ca()
    if ca is None:
        return None
    try:
        return client_context(TlsFiles(ca=ca))
    except TlsError as unusable:
        raise click.ClickException(str(unusable)) from None


def plain_hint(error: Exception, tls: ssl.SSLContext | None) -> str:
    """What to add to the message of a plain-TCP call a TLS port hung up on."""
    if tls is None and isinstance(error, Unreachable) and "Server disconnected" in str(error):
        return f" (if the cluster serves TLS, give its CA: --tls-ca FILE or ${ENV_TLS_CA})"
    return ""


def run_admin(endpoints: Sequence[str], action: Callable[[AdminClient], Awaitable[T]]) -> T:
    """Run ``action`` with a client of the cluster; errors exit 1 with the server's message."""
    found = cluster_endpoints(endpoints)
    token = cluster_token()
    tls = cluster_tls()

    async def main() -> T:
        async with AdminClient(found, token=token, tls=tls) as admin:
            return await action(admin)

    try:
        return asyncio.run(main())
    except ApiError as exc:
        raise click.ClickException(exc.message + plain_hint(exc, tls)) from None


def echo_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns left-aligned, two spaces apart, every line indented by two."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in (headers, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def render_key_values(pairs: Sequence[tuple[str, str]]) -> str:
    """`` Key     :  value`` lines, keys padded to one width."""
    width = max((len(key) for key, _ in pairs), default=0)
    return "\n".join(f" {key.ljust(width)}  :  {value}".rstrip() for key, value in pairs)


_DURATION_UNITS = (("day", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def human_duration(seconds: int) -> str:
    """``604800`` -> ``7days``, ``5400`` -> ``1h 30m``, ``0`` -> ``0s``."""
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in _DURATION_UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            plural = "s" if unit == "day" and count > 1 else ""
            parts.append(f"{count}{unit}{plural}")
    return " ".join(parts)


_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(size: int) -> str:
    """``512`` -> ``512 B``, ``1536`` -> ``1.5 KiB``."""
    value = float(size)
    for unit in _BYTE_UNITS:
        if abs(value) < 1024 or unit == _BYTE_UNITS[-1]:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
