"""Which failed Raft commands are known not to have applied: only those pysyncobj reports
as never logged. The callbacks are called as pysyncobj calls them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pysyncobj import FAIL_REASON

from election.raft_node import CommandNotCommitted, submit


def failing_with(reason: int) -> Callable[..., None]:
    def method(*args: Any, callback: Callable[[Any, int], None]) -> None:
        callback(None, reason)

    return method


@pytest.mark.parametrize(
    "reason",
    [
        FAIL_REASON.MISSING_LEADER,
        FAIL_REASON.NOT_LEADER,
        FAIL_REASON.DISCARDED,
        FAIL_REASON.QUEUE_FULL,
    ],
)
async def test_a_command_never_logged_is_known_not_applied(reason: int) -> None:
    with pytest.raises(CommandNotCommitted) as failed:
        await submit(failing_with(reason), timeout=1)
    assert failed.value.retryable


@pytest.mark.parametrize("reason", [FAIL_REASON.LEADER_CHANGED, FAIL_REASON.UNKNOWN_OUTCOME])
async def test_a_forwarded_command_whose_answer_was_lost_may_have_applied(reason: int) -> None:
    with pytest.raises(CommandNotCommitted) as failed:
        await submit(failing_with(reason), timeout=1)
    assert not failed.value.retryable


async def test_a_command_not_committed_in_time_may_still_apply() -> None:
    def method(*args: Any, callback: Callable[[Any, int], None]) -> None:
        pass  # never answered

    with pytest.raises(CommandNotCommitted, match="may still apply") as failed:
        await submit(method, timeout=0.05)
    assert not failed.value.retryable
