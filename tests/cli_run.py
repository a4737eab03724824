"""The ``ha-sc`` command run as its own process, as a user would run it."""

from __future__ import annotations

import asyncio
import sys


async def ha_sc(*args: str, stdin: bytes = b"") -> tuple[int, bytes, str]:
    """Run the CLI; its exit code, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ha_sc.cli",
        "--log-level",
        "warning",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 90)
    assert proc.returncode is not None
    return proc.returncode, out, err.decode()
