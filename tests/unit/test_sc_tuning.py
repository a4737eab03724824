"""The SC settings tree: defaults valid, each cross-constraint refused with its message,
config files read (unknown keys refused by name), flags over the file, the SPU side
checked by the same cadence rule, and ``sc run --print-settings``."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from ha_sc.cli.main import cli
from ha_sc.cli.sc_tuning import (
    TuningFileError,
    read_tuning_file,
    render_toml,
    tuning_document,
)
from ha_sc.controllers.settings import PacingSettings, WriteWindowSettings
from ha_sc.sc.settings import ScSettings
from ha_sc.sc.spu_grace import DEFAULT_SPU_GRACE
from ha_sc.sc.tuning import ScTuning, leaf_fields
from ha_sc.spu.settings import SpuSettings


def refused(doc: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as invalid:
        ScTuning.model_validate(doc)
    return str(invalid.value)


def test_the_defaults_are_valid_and_keep_todays_timings() -> None:
    tuning = ScTuning()
    assert tuning.spu_grace == DEFAULT_SPU_GRACE
    assert (tuning.spu_link.hold, tuning.spu_link.keepalive_interval) == (1.0, 0.5)
    assert tuning.spu_link.health_timeout == 1.2
    assert (tuning.pacing.pace, tuning.pacing.resync_plans) == (2.0, 10.0)
    assert (tuning.write_window.start, tuning.write_window.limit) == (16, 64)
    ScSettings()  # the tree is reachable from the process settings, valid by default


def test_the_spu_timings_assumed_default_to_the_spus_defaults() -> None:
    spu = ScTuning().spu
    for name in ("sc_timeout", "connect_timeout", "backoff_max", "status_interval"):
        assert getattr(spu, name) == SpuSettings.model_fields[name].default


def test_a_hold_the_spus_cannot_wait_out_is_refused() -> None:
    message = refused({"spu_link": {"hold": 2.5}})
    assert "hold 2.5 s at a standby must stay below the SPU's sc_timeout 2 s" in message


def test_the_hold_is_checked_against_the_spu_timeout_the_sc_is_told() -> None:
    assert ScTuning.model_validate({"spu_link": {"hold": 2.5}, "spu": {"sc_timeout": 3.0}})
    message = refused({"spu": {"sc_timeout": 0.8}})  # SPUs leaving sooner than the hold
    assert "hold 1 s at a standby must stay below the SPU's sc_timeout 0.8 s" in message


def test_a_keepalive_the_spus_take_for_silence_is_refused() -> None:
    message = refused({"spu_link": {"keepalive_interval": 2.0}})
    assert "keepalive interval 2 s must stay below the SPU's sc_timeout 2 s" in message


def test_spus_reporting_too_seldom_for_the_health_timeout_are_refused() -> None:
    message = refused({"spu_link": {"health_timeout": 0.6}})
    assert "status_interval 0.3 s is too long for the SC's health_timeout 0.6 s" in message
    message = refused({"spu": {"status_interval": 0.5}})
    assert "status_interval 0.5 s is too long for the SC's health_timeout 1.2 s" in message


def test_an_spu_checks_its_report_cadence_by_the_same_rule() -> None:
    base: dict[str, Any] = {"spu_id": 5001, "sc_addresses": ["127.0.0.1:9004"], "data_dir": "d"}
    SpuSettings.model_validate({**base, "status_interval": 0.4})
    with pytest.raises(ValidationError, match=r"status_interval 0\.5 s is too long"):
        SpuSettings.model_validate({**base, "status_interval": 0.5})


def test_the_grace_follows_the_timings_it_is_derived_from() -> None:
    longer = ScTuning.model_validate({"spu": {"sc_timeout": 3.0}, "spu_link": {"hold": 0.5}})
    assert longer.spu_grace == pytest.approx(DEFAULT_SPU_GRACE + 1.0 - 0.5)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"controller": {"min_interval": 2.0}}, "controller.min_interval 2 s must not exceed"),
        ({"pacing": {"pace": 4, "resync_plans": 3}}, "pacing.resync_plans 3 must be at least"),
        ({"write_window": {"start": 80}}, "write_window.start 80 must not exceed"),
        ({"pacing": {"pace": 0.5}}, "greater than or equal to 1"),
        ({"controller": {"resync": 0}}, "greater than 0"),
        ({"spu_link": {"hold": 1.0, "typo": 1}}, "typo"),
    ],
)
def test_each_group_refuses_what_cannot_work(doc: dict[str, Any], message: str) -> None:
    assert message in refused(doc)


def test_the_groups_are_frozen() -> None:
    with pytest.raises(ValidationError):
        PacingSettings().pace = 3.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        WriteWindowSettings().limit = 3  # type: ignore[misc]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sc.toml"
    path.write_text(text)
    return path


def test_a_config_file_sets_fields_by_their_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'controller.resync = 2\n[spu_link]\nhold = "750ms"\nhealth_timeout = 1.5\n\n'
        "[write_window]\nlimit = 32\n",
    )
    doc = read_tuning_file(path)
    assert doc == {
        "spu_link": {"hold": 0.75, "health_timeout": 1.5},
        "write_window": {"limit": 32},
        "controller": {"resync": 2},
    }
    tuning = ScTuning.model_validate(doc)
    assert tuning.spu_link.hold == 0.75 and tuning.controller.resync == 2.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[spu_link]\nhodl = 0.5\n", "unknown key 'spu_link.hodl'"),
        ("[link]\nhold = 0.5\n", "unknown key 'link'"),
        ("replica_id = 'sc-2'\n", "unknown key 'replica_id'"),
        ("spu_link = 3\n", "'spu_link' must be a table"),
        ("[spu_link]\nhold = 'soon'\n", "spu_link.hold: 'soon' is not a duration"),
        ("[spu_link\n", "not TOML"),
    ],
)
def test_a_bad_config_file_is_refused_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TuningFileError) as invalid:
        read_tuning_file(path)
    assert message in str(invalid.value) and str(path) in str(invalid.value)


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[spu_link]\nhold = 0.75\nkeepalive_interval = 0.25\n")
    doc = tuning_document(path, {"spu_link": {"hold": 0.5}, "pacing": {"pace": 3.0}})
    assert doc == {
        "spu_link": {"hold": 0.5, "keepalive_interval": 0.25},
        "pacing": {"pace": 3.0},
    }


def test_the_printed_tree_reads_back_as_the_same_settings() -> None:
    tuning = ScTuning.model_validate({"spu_link": {"hold": 0.6}, "write_window": {"start": 8}})
    text = render_toml(tuning)
    assert ScTuning.model_validate(tomllib.loads(text)) == tuning


def run_sc(*args: str) -> Any:
    return CliRunner().invoke(cli, ["sc", "run", "--backend", "memory", *args])


def test_print_settings_prints_the_effective_tree_as_toml(tmp_path: Path) -> None:
    path = write(tmp_path, '[spu_link]\nhold = "750ms"\n[controller]\nresync = 2\n')
    result = run_sc("--config", str(path), "--controller-resync", "1500ms", "--print-settings")
    assert result.exit_code == 0, result.output
    printed = tomllib.loads(result.output)
    assert printed["spu_link"]["hold"] == 0.75  # from the file
    assert printed["controller"]["resync"] == 1.5  # the flag over the file
    assert printed["pacing"]["pace"] == 2.0  # a default
    assert ScTuning.model_validate(printed).spu_link.hold == 0.75


def test_sc_run_refuses_settings_that_break_a_constraint() -> None:
    result = run_sc("--spu-link-hold", "2.5s", "--print-settings")
    assert result.exit_code == 2
    assert "must stay below the SPU's sc_timeout" in result.output


def test_sc_run_refuses_an_unknown_key_in_its_config(tmp_path: Path) -> None:
    path = write(tmp_path, "[pacing]\nspeed = 2\n")
    result = run_sc("--config", str(path), "--print-settings")
    assert result.exit_code == 2
    assert "unknown key 'pacing.speed'" in result.output


def test_a_new_leaders_retries_are_ordered() -> None:
    message = refused({"catch_up": {"retry_initial": 1.0}})
    assert "catch_up.retry_initial 1 s must not exceed catch_up.retry_max 0.5 s" in message


def test_slow_writes_are_judged_within_the_leases_renew_deadline() -> None:
    with pytest.raises(ValidationError, match=r"write_window.slow 0\.6 s must stay below"):
        ScSettings.model_validate({"tuning": {"write_window": {"slow": 0.6}}})  # raft: 0.55 s
    etcd = ScSettings.model_validate(
        {"backend": "etcd", "tuning": {"write_window": {"slow": 0.6}}}  # etcd: 1.5 s
    )
    assert etcd.tuning.write_window.slow == 0.6
    with pytest.raises(ValidationError, match=r"renew_deadline 1 s"):
        ScSettings.model_validate(
            {"renew_deadline": 1.0, "lease_ttl": 2.0, "tuning": {"write_window": {"slow": 1.0}}}
        )


def test_the_settings_doc_lists_every_field() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "sc-settings.md").read_text()
    missing = [f"{g}.{n}" for g, n, _ in leaf_fields() if f"`{g}.{n}`" not in doc]
    assert missing == []
