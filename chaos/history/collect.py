"""After a run: what the members wrote themselves, turned into history events.

Each SPU's ``control-events.jsonl`` (its epoch-fence decisions) and each SC replica's
log lines ``became leader epoch=N`` (claims too short-lived for the 50 ms poll)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from chaos.history.events import Control, Leader

CONTROL_EVENTS_FILE = "control-events.jsonl"
BECAME_LEADER = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*became leader epoch=(\d+)", re.MULTILINE
)


def control_events(spu_data_dir: Path) -> Iterator[Control]:
    """The SPU's fence decisions, in the order it made them (a torn line is skipped)."""
    try:
        lines = (spu_data_dir / CONTROL_EVENTS_FILE).read_text().splitlines()
    except FileNotFoundError:
        return
    for line in lines:
        try:
            yield Control.model_validate(json.loads(line))
        except (ValueError, ValidationError):
            continue


def leader_claims(replica: str, log_text: str) -> Iterator[Leader]:
    """Each ``became leader epoch=N`` in an SC replica's log, at its logged time."""
    for stamp, epoch in BECAME_LEADER.findall(log_text):
        t = time.mktime(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timetuple())
        t += int(stamp[-3:]) / 1000
        yield Leader(
            t=t, replica=replica, role="leader", epoch=int(epoch), leader=replica, source="log"
        )
