"""Records from a stream of lines: read in large pieces, split, keys cut off (pure
parts, plus a reader that takes a file descriptor off the event loop)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

READ_SIZE = 1024 * 1024
"""Bytes asked for per read: a file comes in large pieces, a terminal line by line
(a read returns what is there)."""


class LineSplitter:
    """Cuts bytes into lines without their ``\\n`` (or ``\\r\\n``), holding back a
    partial last line until its end arrives."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[bytes]:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        if any(line.endswith(b"\r") for line in lines):
            lines = [line.removesuffix(b"\r") for line in lines]
        return lines

    def finish(self) -> list[bytes]:
        """The last line, if the input did not end with a newline."""
        rest, self._partial = self._partial, b""
        return [rest.removesuffix(b"\r")] if rest else []


class MissingSeparator(ValueError):
    """A line without the key separator."""


def split_key(line: bytes, separator: bytes) -> tuple[bytes, bytes]:
    """``key<sep>value`` -> (key, value), at the first separator."""
    key, found, value = line.partition(separator)
    if not found:
        raise MissingSeparator(f"no key separator {separator.decode(errors='replace')!r} in line")
    return key, value


async def read_lines(fd: int) -> AsyncIterator[list[bytes]]:
    """Lists of lines from ``fd`` until its end; each read runs on a worker thread."""
    splitter = LineSplitter()
    while True:
        data = await asyncio.to_thread(os.read, fd, READ_SIZE)
        if not data:
            break
        lines = splitter.feed(data)
        if lines:
            yield lines
    last = splitter.finish()
    if last:
        yield last
