"""etcd connection settings: what is refused before anything dials etcd, and how
``sc run`` says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from election.etcd_access import EtcdAccess, EtcdAccessError
from ha_sc.cli.main import cli
from tests.etcd_certs import TestCa


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"endpoints": ("https://10.0.0.1:2379",)}, "https but no etcd CA"),
        ({"ca_file": Path("ca.pem"), "endpoints": ("http://10.0.0.1:2379",)}, "plain http"),
        ({"ca_file": Path("ca.pem"), "cert_file": Path("c.pem")}, "needs its key"),
        ({"cert_file": Path("c.pem"), "key_file": Path("k.pem")}, "only sent over TLS"),
        ({"user": "sc"}, "needs a password file"),
        ({"endpoints": ()}, "at least 1 item"),
    ],
)
def test_inconsistent_settings_are_refused(fields: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        EtcdAccess.model_validate(fields)


def test_load_reads_the_named_files(tmp_path: Path) -> None:
    ca = TestCa(tmp_path)
    client = ca.issue("sc")
    credentials = EtcdAccess(ca_file=ca.cert, cert_file=client.cert, key_file=client.key).load()
    assert credentials.tls
    assert credentials.ca == ca.cert.read_bytes() and credentials.key == client.key.read_bytes()
    assert client.key.read_bytes() not in repr(credentials).encode()


def test_a_file_that_is_not_pem_is_named(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    with pytest.raises(EtcdAccessError, match=r"etcd CA .*ca\.pem: not a PEM file"):
        EtcdAccess(ca_file=ca).load()


def sc_run(tmp_path: Path, *flags: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["sc", "run", "--backend", "etcd", "--data-dir", str(tmp_path / "d"), *flags],
    )
    return result.exit_code, result.output


def test_sc_run_refuses_an_https_endpoint_without_a_ca(tmp_path: Path) -> None:
    code, output = sc_run(tmp_path, "--etcd-endpoint", "https://127.0.0.1:2379")
    assert code == 2 and "https but no etcd CA" in output and "--etcd-ca" in output


def test_sc_run_names_a_missing_certificate_before_starting(tmp_path: Path) -> None:
    code, output = sc_run(tmp_path, "--etcd-ca", str(tmp_path / "missing-ca.pem"))
    assert code == 2 and "missing-ca.pem: cannot read it" in output


def test_sc_run_never_prints_the_etcd_password(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret-etcd-password")
    password.chmod(0o640)
    code, output = sc_run(tmp_path, "--etcd-user", "sc", "--etcd-password-file", str(password))
    assert code == 2 and "other users may read it" in output
    assert "s3cret-etcd-password" not in output


def test_describe_names_the_protection_and_never_the_password(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    plain = EtcdAccess(user="sc", password_file=secret)
    assert plain.describe() == "plain gRPC (no TLS), etcd user sc"
    tls = EtcdAccess(ca_file=Path("ca.pem"), cert_file=Path("c.pem"), key_file=Path("k.pem"))
    assert tls.describe() == "TLS, client certificate, no etcd user"
