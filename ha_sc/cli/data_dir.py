"""One process per data dir: ``sc run`` and ``spu run`` lock theirs for as long as they run."""

from __future__ import annotations

from pathlib import Path

import click

from ha_sc.filelock import Locked, acquire

LOCK_FILE = "process.lock"


def lock_data_dir(data_dir: Path, flag: str = "--data-dir") -> int:
    """Lock ``data_dir`` for this process (released when it exits, however it exits);
    exits 1 naming the holder's PID when another process has it."""
    try:
        return acquire(data_dir / LOCK_FILE, wait=False)
    except Locked as locked:
        who = f"process {locked.holder}" if locked.holder is not None else "another process"
        raise click.ClickException(
            f"{flag} {data_dir} is in use by {who}; two processes must never share a data "
            f"dir: give this one its own {flag}"
        ) from None
