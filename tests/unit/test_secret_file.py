"""Secret files: read with clear refusals, written 0600; the Raft secret in settings."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ha_sc.cluster.credentials import raft_secret_file
from ha_sc.sc.settings import ScSettings
from ha_sc.secret_file import SecretFileError, new_secret, read_secret, write_secret


def test_a_written_secret_reads_back_and_only_its_owner_may_read_it(tmp_path: Path) -> None:
    path = tmp_path / "s"
    secret = new_secret()
    write_secret(path, secret)
    assert read_secret(path) == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_file_others_may_read_is_refused_without_showing_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "s"
    secret = new_secret()
    write_secret(path, secret)
    path.chmod(0o644)
    with pytest.raises(SecretFileError, match="chmod 600") as refused:
        read_secret(path)
    assert secret not in str(refused.value)


@pytest.mark.parametrize("content", ["", "short", "two words here and there"])
def test_an_empty_short_or_spaced_secret_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "s"
    write_secret(path, content)
    with pytest.raises(SecretFileError, match="at least"):
        read_secret(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretFileError, match="cannot read"):
        read_secret(tmp_path / "missing")


def test_the_cluster_raft_secret_is_made_once(tmp_path: Path) -> None:
    first = read_secret(raft_secret_file(tmp_path))
    assert read_secret(raft_secret_file(tmp_path)) == first


def test_a_non_loopback_raft_address_is_accepted_with_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--raft-secret-file"):
        ScSettings(raft_address="192.0.2.10:9010")
    settings = ScSettings(raft_address="192.0.2.10:9010", raft_secret_file=tmp_path / "s")
    assert settings.raft_secret_file == tmp_path / "s"
