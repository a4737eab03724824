"""An SPU's TLS contexts, made once at start from its ``TlsFiles``."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from ha_sc.protocol.tls import TlsFiles, client_context, server_context


@dataclass(frozen=True, slots=True)
class SpuTls:
    """What each of the SPU's ports and links uses."""

    public: ssl.SSLContext
    """The public data port (producers, consumers): no client certificate asked."""
    private: ssl.SSLContext
    """The private data port (followers): a client certificate asked if ``client_auth``."""
    dialer: ssl.SSLContext
    """Links to the SC replicas and to leader SPUs: checks their certificates against
    the CA and shows this SPU's own."""


def spu_tls(files: TlsFiles | None) -> SpuTls | None:
    """The contexts (None without TLS); TlsError if a file cannot be used."""
    if files is None:
        return None
    return SpuTls(
        public=server_context(files.model_copy(update={"client_auth": False})),
        private=server_context(files),
        dialer=client_context(files),
    )
