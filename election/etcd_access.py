"""How to reach an etcd cluster: its endpoints, TLS files and credentials.

One model for every etcd connection (the KV, the election, benches, chaos). The
settings name files; ``load`` reads them once at start, so a missing or unreadable
file is a start error that names it. The password never appears in a message, a
``repr`` or a log line.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

TLS_SCHEME = "https://"
PLAIN_SCHEME = "http://"


class EtcdAccessError(ValueError):
    """A file named by the etcd settings cannot be used; the message names the file."""


class EtcdAccess(BaseModel):
    """Endpoints and, optionally, TLS (CA, client certificate and key) and etcd auth."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoints: tuple[str, ...] = Field(default=("127.0.0.1:2379",), min_length=1)
    """``host:port`` of the members; ``https://`` (needs ``ca_file``) or ``http://`` accepted."""
    ca_file: Path | None = None
    """CA that signed the members' server certificates; set, every connection is TLS."""
    cert_file: Path | None = None
    """Client certificate (PEM) for etcd's ``--client-cert-auth``; needs ``key_file``."""
    key_file: Path | None = None
    """Private key of ``cert_file`` (PEM)."""
    user: str | None = Field(default=None, min_length=1)
    """etcd user name (etcd auth enabled); needs ``password_file``."""
    password_file: Path | None = None
    """File holding that user's password on its first line (mode 0600)."""

    @property
    def tls(self) -> bool:
        return self.ca_file is not None

    @model_validator(mode="after")
    def _consistent(self) -> EtcdAccess:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("an etcd client certificate needs its key: give both or neither")
        if (self.user is None) != (self.password_file is None):
            raise ValueError("an etcd user needs a password file: give both or neither")
        if self.cert_file is not None and self.ca_file is None:
            raise ValueError("an etcd client certificate is only sent over TLS: give the etcd CA")
        for endpoint in self.endpoints:
            if endpoint.startswith(TLS_SCHEME) and self.ca_file is None:
                raise ValueError(
                    f"etcd endpoint {endpoint} is https but no etcd CA is given to check "
                    "its certificate (--etcd-ca)"
                )
            if endpoint.startswith(PLAIN_SCHEME) and self.ca_file is not None:
                raise ValueError(
                    f"etcd endpoint {endpoint} is plain http although an etcd CA is given: "
                    "every member is reached over TLS then; write https:// or host:port"
                )
        return self

    def describe(self) -> str:
        """How the members are reached, for the start log (names, never secrets)."""
        parts = ["TLS" if self.tls else "plain gRPC (no TLS)"]
        if self.cert_file is not None:
            parts.append("client certificate")
        parts.append(f"etcd user {self.user}" if self.user is not None else "no etcd user")
        return ", ".join(parts)

    def load(self) -> EtcdCredentials:
        """The files' contents; EtcdAccessError names a file that cannot be read."""
        password = None
        if self.password_file is not None:
            password = _read_password(self.password_file)
        return EtcdCredentials(
            ca=_read_pem(self.ca_file, "etcd CA"),
            cert=_read_pem(self.cert_file, "etcd client certificate"),
            key=_read_pem(self.key_file, "etcd client key"),
            user=self.user,
            password=password,
        )


@dataclass(frozen=True, slots=True)
class EtcdCredentials:
    """What ``EtcdAccess`` names, read: PEM bytes, and the user and password if any."""

    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def tls(self) -> bool:
        return self.ca is not None


PLAIN = EtcdCredentials()
"""No TLS, no auth: plain gRPC, as a local etcd on loopback is run."""


def _read_pem(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as cannot:
        raise EtcdAccessError(f"{what} {path}: cannot read it ({cannot.strerror})") from None
    if b"-----BEGIN " not in data:
        raise EtcdAccessError(f"{what} {path}: not a PEM file")
    return data


def _read_password(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as cannot:
        reason = cannot.strerror if isinstance(cannot, OSError) else "not UTF-8 text"
        raise EtcdAccessError(f"etcd password file {path}: cannot read it ({reason})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise EtcdAccessError(
            f"etcd password file {path}: other users may read it "
            f"(mode {stat.S_IMODE(mode):o}); chmod 600 it"
        )
    lines = text.splitlines()
    password = lines[0].strip() if lines else ""
    if not password:
        raise EtcdAccessError(f"etcd password file {path}: empty")
    return password
