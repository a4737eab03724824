"""A throwaway CA and the certificates a TLS etcd test needs: the project's own cluster CA
(``ha_sc.cluster.cert_authority``) under a test's directory.

Every certificate is for loopback (``127.0.0.1`` and ``localhost``, and any addresses
given) and usable both as a server and as a client certificate, as etcd's peer
certificates must be.
"""

from __future__ import annotations

from pathlib import Path

from ha_sc.cluster.cert_authority import KeyPair, issue, make_ca

CertPair = KeyPair
"""A certificate and its key, as PEM files."""


class TestCa:
    """A CA under ``directory`` that issues loopback certificates."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, name: str = "ha-sc test CA") -> None:
        self.directory = directory
        self.cert = make_ca(directory, name=name).cert

    def issue(self, common_name: str, addresses: tuple[str, ...] = ()) -> CertPair:
        """A certificate for ``common_name`` on loopback and ``addresses`` (IPs, as a
        member in a network namespace has), signed by this CA."""
        hosts = tuple(dict.fromkeys(["127.0.0.1", "localhost", *addresses]))
        return issue(self.directory, self.directory, common_name, hosts)
