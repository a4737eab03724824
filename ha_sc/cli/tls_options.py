"""``--tls-cert``, ``--tls-key``, ``--tls-ca``, ``--tls-client-auth`` of ``sc run`` and
``spu run``, and checking the files before the member starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from pydantic import ValidationError

from ha_sc.model.codec import format_validation_error
from ha_sc.protocol.tls import TlsError, TlsFiles, client_context, server_context

F = TypeVar("F", bound=Callable[..., object])

_FILE = click.Path(dir_okay=False, path_type=Path)


def tls_options(what: str) -> Callable[[F], F]:
    """The four flags; ``what`` names the ports they secure, for the help."""

    def decorate(function: F) -> F:
        for option in reversed(
            (
                click.option(
                    "--tls-cert",
                    type=_FILE,
                    help=f"PEM certificate (chain) served on {what}; with --tls-key turns "
                    "TLS on for all of them.  [default: plain TCP]",
                ),
                click.option("--tls-key", type=_FILE, help="PEM private key of --tls-cert."),
                click.option(
                    "--tls-ca",
                    type=_FILE,
                    help="PEM CA the peers' certificates are checked with (the SC's and "
                    "other SPUs' when dialling them, clients' with --tls-client-auth).",
                ),
                click.option(
                    "--tls-client-auth",
                    is_flag=True,
                    help="The private port refuses a peer without a certificate signed by "
                    "--tls-ca (the public port is left to tokens).",
                ),
            )
        ):
            function = option(function)
        return function

    return decorate


def tls_files(
    cert: Path | None, key: Path | None, ca: Path | None, client_auth: bool
) -> TlsFiles | None:
    """The TLS settings the flags give (None: plain TCP), each file checked now so a bad
    one stops the start with the reason."""
    if cert is None and key is None:
        if ca is not None or client_auth:
            raise click.UsageError("--tls-ca and --tls-client-auth need --tls-cert and --tls-key")
        return None
    try:
        files = TlsFiles(ca=ca, cert=cert, key=key, client_auth=client_auth)
    except ValidationError as invalid:
        raise click.UsageError(format_validation_error(invalid)) from None
    try:
        server_context(files)
        client_context(files)
    except TlsError as unusable:
        raise click.BadParameter(str(unusable)) from None
    return files
