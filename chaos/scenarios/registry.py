"""Every scenario by name (``ha-sc chaos list``)."""

from __future__ import annotations

from chaos.scenarios import (
    control_plane,
    data_plane,
    etcd_delete,
    host_faults,
    manual,
    operator_cli,
    restart_loop,
    topic_failover,
)
from chaos.scenarios.scenario import Scenario
from chaos.scenarios.soak import soak_scenario

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        *control_plane.SCENARIOS,
        *topic_failover.SCENARIOS,
        *data_plane.SCENARIOS,
        *host_faults.SCENARIOS,
        *manual.SCENARIOS,
        *operator_cli.SCENARIOS,
        *etcd_delete.SCENARIOS,
        *restart_loop.SCENARIOS,
        soak_scenario(),
    ]
}


def scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise KeyError(f"no scenario {name!r}; known: {known}") from None


def quick_suite() -> list[Scenario]:
    return [s for s in SCENARIOS.values() if s.quick]
