"""The SPU's on-disk partition replica log: segmented, checksummed, crash-recovering.

``batch`` and ``records`` are sans-IO (the batch format clients and SPUs share);
``ReplicaLog`` stores batches as opaque bytes. On-disk format, recovery rule and
fsync policy: docs/storage.md.
"""

from ha_sc.protocol.record_batch import (
    HEADER_SIZE,
    NO_PRODUCER,
    NO_SEQUENCE,
    BatchHeader,
    MalformedBatch,
    RawBatch,
    check_batch,
    iter_batches,
    make_batch,
    parse_header,
    with_base_offset,
)
from ha_sc.spu.storage.errors import (
    CorruptLog,
    LogClosed,
    LogLocked,
    OffsetMismatch,
    OffsetOutOfRange,
    StorageError,
)
from ha_sc.spu.storage.layout import replica_dir
from ha_sc.spu.storage.records import Record, decode_records, encode_records
from ha_sc.spu.storage.replica_log import ReplicaLog
from ha_sc.spu.storage.settings import FsyncPolicy, LogSettings

__all__ = [
    "HEADER_SIZE",
    "NO_PRODUCER",
    "NO_SEQUENCE",
    "BatchHeader",
    "CorruptLog",
    "FsyncPolicy",
    "LogClosed",
    "LogLocked",
    "LogSettings",
    "MalformedBatch",
    "OffsetMismatch",
    "OffsetOutOfRange",
    "RawBatch",
    "Record",
    "ReplicaLog",
    "StorageError",
    "check_batch",
    "decode_records",
    "encode_records",
    "iter_batches",
    "make_batch",
    "parse_header",
    "replica_dir",
    "with_base_offset",
]
