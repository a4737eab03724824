"""The injector records fault windows and heals every fault, whatever happens."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chaos.faults.base import Injector
from chaos.history.events import Fault
from chaos.history.history import History
from chaos.history.recorder import Recorder


@dataclass(eq=False)
class Noted:
    target: str
    name: str = "noted"
    calls: list[str] = field(default_factory=list)
    heal_fails: bool = False

    async def inject(self) -> None:
        self.calls.append("inject")

    async def heal(self) -> None:
        self.calls.append("heal")
        if self.heal_fails:
            raise RuntimeError("cannot heal")


async def test_a_fault_is_healed_when_the_scenario_fails(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "history.jsonl")
    injector = Injector(recorder)
    fault = Noted("sc-1")
    with pytest.raises(ValueError, match="scenario broke"):
        async with injector.applied(fault):
            raise ValueError("scenario broke")
    assert fault.calls == ["inject", "heal"]
    recorder.close()
    (window,) = History.load(recorder.path).faults()
    assert (window.name, window.target) == ("noted", "sc-1")


async def test_heal_all_heals_the_rest_when_one_heal_fails(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "history.jsonl")
    injector = Injector(recorder)
    first, broken, last = Noted("a"), Noted("b", heal_fails=True), Noted("c")
    for fault in (first, broken, last):
        await injector.inject(fault)
    await injector.heal_all()
    assert [f.calls for f in (first, broken, last)] == [["inject", "heal"]] * 3
    assert injector.active == []
    await injector.heal_all()  # nothing left: nothing happens
    assert first.calls == ["inject", "heal"]
    recorder.close()
    actions = [e.action for e in History.load(recorder.path).events if isinstance(e, Fault)]
    assert actions == ["inject"] * 3 + ["heal"] * 3
