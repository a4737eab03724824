"""The import contracts of pyproject.toml ([tool.importlinter]) hold, so ``pytest``
alone catches a crossing between layers; and the pieces that keep them: the client
loads no server code, the ``chaos`` verb comes from a plugin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ha_sc.cli.main import cli
from ha_sc.cli.plugins import plugin_entry_points

pytestmark = pytest.mark.slow  # fresh interpreters and lint-imports as subprocesses

ROOT = Path(__file__).resolve().parents[2]
SERVER_PACKAGES = ("ha_sc.sc", "ha_sc.api", "ha_sc.store", "ha_sc.controllers", "ha_sc.kv")


def _loaded_after(statement: str, prefixes: tuple[str, ...]) -> list[str]:
    """Modules under ``prefixes`` that a fresh interpreter has loaded after ``statement``."""
    probe = (
        f"import sys\n{statement}\n"
        f"print('\\n'.join(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [
        line
        for line in done.stdout.splitlines()
        if any(line == p or line.startswith(p + ".") for p in prefixes)
    ]


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_client_loads_no_server_module() -> None:
    assert _loaded_after("import ha_sc.client", (*SERVER_PACKAGES, "ha_sc.spu")) == []


def test_the_product_cli_does_not_import_the_chaos_harness() -> None:
    assert _loaded_after("import ha_sc.cli.main", ("chaos",)) == []


def test_the_chaos_verb_is_a_registered_plugin() -> None:
    assert plugin_entry_points()["chaos"].value == "chaos.cli:chaos"
    listing = CliRunner().invoke(cli, ["--help"])
    assert listing.exit_code == 0, listing.output
    assert "chaos" in listing.output
    verbs = CliRunner().invoke(cli, ["chaos", "--help"])
    assert verbs.exit_code == 0, verbs.output
    for verb in ("list", "run", "suite", "soak", "report"):
        assert verb in verbs.output


def test_an_unknown_verb_is_refused() -> None:
    result = CliRunner().invoke(cli, ["no-such-verb"])
    assert result.exit_code != 0
    assert "No such command" in result.output
