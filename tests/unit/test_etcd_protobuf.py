"""The etcd client leaves protobuf alone: no process-wide pure-Python override.

etcd3 0.12 needed PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python, set at import time,
and could not load at all once protobuf had been imported with its C implementation
(as an OTLP exporter does). Each case runs in a fresh interpreter, since protobuf
chooses its implementation once per process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each case runs a fresh interpreter

REPO = Path(__file__).resolve().parents[2]
ETCD_MODULES = "import ha_sc.kv.etcd, election.etcd, election.etcd_client"
REPORT = (
    "import os; from google.protobuf.internal import api_implementation; "
    "print(api_implementation.Type(), os.environ.get('PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION'))"
)


def fresh_interpreter(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(f"{ETCD_MODULES}; {REPORT}", id="etcd-modules-first"),
        pytest.param(
            f"from google.protobuf import descriptor_pb2; {ETCD_MODULES}; {REPORT}",
            id="protobuf-loaded-before",
        ),
    ],
)
def test_etcd_modules_keep_protobufs_c_implementation(code: str) -> None:
    implementation, override = fresh_interpreter(code).split()
    assert implementation != "python"
    assert override == "None"
