"""``python -m chaos.timed_cli REPORT ARG...``: the ``ha-sc`` command line ARG... run
through the console script's entry point, timed from inside the process.

The clock starts once the CLI's modules are imported, so the interpreter's start-up
(seconds on a loaded machine) is not counted as the cluster's answer time, and stops
at exit. REPORT gets one JSON object: ``{"answer_s": seconds}``.
"""

from __future__ import annotations

import atexit
import json
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path


def main(argv: list[str]) -> None:
    report, args = Path(argv[0]), argv[1:]
    (script,) = entry_points(group="console_scripts", name="ha-sc")
    ha_sc = script.load()  # what the installed ha-sc command runs, its modules loaded

    started = time.monotonic()

    def answered() -> None:
        report.write_text(json.dumps({"answer_s": round(time.monotonic() - started, 4)}))

    atexit.register(answered)
    sys.argv = ["ha-sc", *args]
    ha_sc()


if __name__ == "__main__":
    main(sys.argv[1:])
