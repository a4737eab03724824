"""A property: any mix of appends, truncations, reopens and torn tails keeps the log
equal to a plain list of batches."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ha_sc.spu.storage import (
    FsyncPolicy,
    LogSettings,
    ReplicaLog,
    encode_records,
    iter_batches,
    make_batch,
    with_base_offset,
)

SETTINGS = LogSettings(segment_bytes=400, index_interval_bytes=150, fsync=FsyncPolicy.NEVER)

append = st.tuples(st.just("append"), st.lists(st.binary(max_size=90), min_size=1, max_size=4))
truncate = st.tuples(st.just("truncate"), st.floats(0, 1))
reopen = st.tuples(st.just("reopen"), st.none())
tear = st.tuples(st.just("tear"), st.integers(1, 200))
operations = st.lists(st.one_of(append, append, truncate, reopen, tear), max_size=30)


@dataclass
class Model:
    batches: list[bytes] = field(default_factory=list)
    """Each batch as stored, with its base offset."""

    @property
    def leo(self) -> int:
        return sum(count_of(b) for b in self.batches)

    def truncate(self, offset: int) -> None:
        while self.batches and self.leo - count_of(self.batches[-1]) >= offset:
            self.batches.pop()
        if self.batches and self.leo > offset:
            self.batches.pop()  # offset fell inside the last batch

    def tear(self, directory: Path, cut: int) -> None:
        """Cut ``cut`` bytes off the last segment; drop the batches that lose bytes."""
        last = max(directory.glob("*.log"))
        size = last.stat().st_size
        cut = min(cut, size)
        with last.open("r+b") as f:
            f.truncate(size - cut)
        while cut > 0:
            cut -= len(self.batches.pop())


def count_of(raw: bytes) -> int:
    (only,) = iter_batches(raw, verify=False)
    return only.header.record_count


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_log_matches_a_list_of_batches(ops: list[tuple[str, object]]) -> None:
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        model = Model()
        log = ReplicaLog.open(directory, SETTINGS)
        try:
            for kind, arg in ops:
                if kind == "append":
                    assert isinstance(arg, list)
                    raw = make_batch(
                        encode_records(arg), record_count=len(arg), first_timestamp_ms=0
                    )
                    base, leo = log.append(raw)
                    assert (base, leo) == (model.leo, model.leo + len(arg))
                    model.batches.append(with_base_offset(raw, base))
                elif kind == "truncate":
                    assert isinstance(arg, float)
                    offset = round(arg * model.leo)
                    model.truncate(offset)
                    assert log.truncate_to(offset) == model.leo
                else:
                    log.close()
                    if kind == "tear" and model.batches:
                        assert isinstance(arg, int)
                        model.tear(directory, arg)
                    log = ReplicaLog.open(directory, SETTINGS)
                assert log.leo == model.leo
                assert log.read(0, 1 << 20) == b"".join(model.batches)
                start = 0
                for raw in model.batches:
                    for offset in range(start, start + count_of(raw)):
                        assert log.read(offset, 1).startswith(raw)
                    start += count_of(raw)
        finally:
            log.close()
