"""Opening the last segment after a crash: keep the good batches, cut the torn tail.

The rule: every batch of the last segment is read and checked in order (whole,
well-formed header, crc over the payload, base offset following the batch before).
The first one that fails ends the log; it and every byte after it are truncated away.
A batch that ``append`` acknowledged was written whole before it returned, so it
passes (and, under ``FsyncPolicy.ALWAYS``, survives a power loss too); only a batch
being written when the process died, or bytes damaged since, can fail.

The index of the last segment is rebuilt from the batches found and rewritten if it
differs from the file (entries past the new end are dropped with the rest).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ha_sc.spu.storage.index import OffsetIndex
from ha_sc.spu.storage.layout import index_path, log_path
from ha_sc.spu.storage.scan import SegmentScan
from ha_sc.spu.storage.segment import Segment

log = logging.getLogger("ha_sc.spu.storage")


def recover_last_segment(directory: Path, base_offset: int, index_interval: int) -> Segment:
    """The last segment, checked batch by batch, with any torn tail truncated."""
    path = log_path(directory, base_offset)
    fd = os.open(path, os.O_RDWR | os.O_APPEND)
    size = os.fstat(fd).st_size
    index = OffsetIndex(index_path(directory, base_offset), base_offset, index_interval)
    scan = SegmentScan(fd, start=0, end=size, first_offset=base_offset, verify_crc=True)
    next_offset = base_offset
    for position, header in scan:
        if index.wants_entry(position):
            index.note(header.base_offset, position)
        next_offset = header.next_offset
    if scan.problem is not None:
        log.warning(
            "%s: truncating %d bytes of torn tail at byte %d (%s)",
            path,
            size - scan.position,
            scan.position,
            scan.problem,
        )
        os.ftruncate(fd, scan.position)
        os.fsync(fd)
    try:
        on_disk = index.path.read_bytes()
    except FileNotFoundError:
        on_disk = None
    if on_disk != index.encode():
        index.write()
    return Segment(path, fd, index, size=scan.position, next_offset=next_offset)
