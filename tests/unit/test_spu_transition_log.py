"""A reconcile's replica transitions: a line each for the first few, then one count."""

import logging

import pytest

from ha_sc.spu.dataplane.transition_log import TransitionLog

log = logging.getLogger("test.transitions")


def info_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]


def test_the_first_transitions_get_a_line_each_and_the_rest_one_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    transitions = TransitionLog(log, each=2)
    for n in range(5):
        transitions.note("led" if n % 2 else "followed", "replica t-%d moved", n)
    transitions.flush()
    assert info_lines(caplog) == [
        "replica t-0 moved",
        "replica t-1 moved",
        "and 3 more replicas: 2 followed, 1 led",
    ]


def test_each_reconcile_starts_afresh(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    transitions = TransitionLog(log, each=1)
    transitions.note("led", "replica a-0 led")
    transitions.flush()
    transitions.note("led", "replica b-0 led")
    transitions.flush()
    transitions.flush()
    assert info_lines(caplog) == ["replica a-0 led", "replica b-0 led"]


def test_the_counted_ones_are_still_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=log.name)
    transitions = TransitionLog(log, each=0)
    transitions.note("followed", "replica c-0 follows spu %d", 5002)
    transitions.flush()
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, "replica c-0 follows spu 5002"),
        (logging.INFO, "and 1 more replicas: 1 followed"),
    ]
