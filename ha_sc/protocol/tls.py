"""TLS on the SC and SPU ports: which files a process uses, and the contexts made of them.

A listener needs a certificate and its key; it asks connecting peers for a certificate
signed by the CA only when ``client_auth`` is set. A client needs the CA that signed the
servers' certificates (without one, the system's trusted CAs) and checks that the
certificate names the address it dialled (an IP SAN for an IP address); it shows its own
certificate when it has one. TLS 1.2 is the oldest version either side accepts.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

SPU_NAME = re.compile(r"spu-(\d+)")
"""How an SPU's certificate names it (its subject's common name): ``spu-<id>``."""


class TlsError(ValueError):
    """TLS files that cannot be used; the message names the file and why."""


class TlsFiles(BaseModel):
    """The PEM files of one process's TLS settings (``--tls-ca``, ``--tls-cert``,
    ``--tls-key``, ``--tls-client-auth``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ca: Path | None = None
    """The CA that signed the peers' certificates (None: the system's trusted CAs)."""
    cert: Path | None = None
    """This process's certificate (chain); shown to clients, and to servers that ask."""
    key: Path | None = None
    """The private key of ``cert``."""
    client_auth: bool = False
    """A listener refuses a client without a certificate signed by ``ca``."""

    @model_validator(mode="after")
    def _cert_with_key(self) -> TlsFiles:
        if (self.cert is None) != (self.key is None):
            raise ValueError("a TLS certificate and its key go together: give both or neither")
        if self.client_auth and self.ca is None:
            raise ValueError("client certificates can be required only with a CA to check them")
        return self


def _readable(what: str, path: Path) -> None:
    try:
        with path.open("rb") as pem:
            pem.read(1)
    except OSError as cannot:
        raise TlsError(f"tls {what} {path}: cannot read it ({cannot.strerror})") from None


def _load_identity(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    _readable("certificate", cert)
    _readable("key", key)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as bad:
        if "KEY_VALUES_MISMATCH" in str(bad):
            raise TlsError(f"tls key {key} does not match the certificate {cert}") from None
        raise TlsError(
            f"tls certificate {cert} or key {key}: not a usable PEM pair ({bad.reason})"
        ) from None


def _load_ca(context: ssl.SSLContext, ca: Path) -> None:
    _readable("CA", ca)
    try:
        context.load_verify_locations(cafile=ca)
    except ssl.SSLError as bad:
        raise TlsError(f"tls CA {ca}: not a PEM certificate ({bad.reason})") from None


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A listener's context; TlsError if a file is missing, unreadable or mismatched."""
    if files.cert is None or files.key is None:
        raise TlsError("a TLS listener needs a certificate and its key (--tls-cert, --tls-key)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_identity(context, files.cert, files.key)
    if files.client_auth and files.ca is not None:
        _load_ca(context, files.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """A dialler's context: the server's certificate checked against the CA and the
    address dialled; TlsError if a file is missing, unreadable or mismatched."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=None)
    if files.ca is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _load_ca(context, files.ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if files.cert is not None and files.key is not None:
        _load_identity(context, files.cert, files.key)
    return context


def spu_claim_refusal(claimed: int, proven: int | None) -> str | None:
    """Why a peer whose certificate proves SPU ``proven`` (None: it names no SPU) may not
    speak as SPU ``claimed``, or None if it may."""
    if proven is None:
        return "its certificate names no SPU"
    if proven != claimed:
        return f"its certificate is spu {proven}'s"
    return None


def peer_spu_id(peer_certificate: object) -> int | None:
    """The SPU id a verified peer certificate names (common name ``spu-<id>``), if any.

    ``peer_certificate`` is what ``getpeercert()`` (or a transport's ``peercert``) gives."""
    if not isinstance(peer_certificate, dict):
        return None
    for rdn in peer_certificate.get("subject", ()):
        for field, value in rdn:
            if field == "commonName" and (named := SPU_NAME.fullmatch(str(value))):
                return int(named.group(1))
    return None
