"""The timeline picture: drawn with matplotlib when it is installed (the ``chaos``
extra), left out (and said so) when it is not, the rest of the report unchanged."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from chaos.history.history import History
from chaos.report.timeline import draw_timeline
from tests.chaos.test_chaos_checkers import clean_events


def test_the_timeline_is_drawn_with_matplotlib(tmp_path: Path) -> None:
    path = tmp_path / "timeline.png"
    assert draw_timeline(History(clean_events()), path, title="clean run")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_without_matplotlib_no_picture_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    path = tmp_path / "timeline.png"
    assert not draw_timeline(History(clean_events()), path, title="clean run")
    assert not path.exists()
