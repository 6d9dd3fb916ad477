"""Record batches: the magic-2 builder and lazy reader, legacy magic 0/1 message sets,
control records, the compression codecs, and the broker's batch helpers.

See ``docs/architecture.md`` ("Record batches") for the contract other parts rely on.
"""

from streamclient.protocol.records.batch import (
    NO_TIMESTAMP,
    BatchHeader,
    Record,
    RecordBatch,
    TimestampType,
    read_batch_header,
)
from streamclient.protocol.records.builder import DEFAULT_BATCH_SIZE, Header, RecordBatchBuilder
from streamclient.protocol.records.compression import Compression, compress, decompress
from streamclient.protocol.records.compression_ratio import CompressionRatioEstimator
from streamclient.protocol.records.control import (
    ControlRecord,
    ControlRecordType,
    build_control_batch,
)
from streamclient.protocol.records.legacy import LegacyBatch, LegacyRecordBatchBuilder
from streamclient.protocol.records.log_validator import (
    set_base_offset,
    set_log_append_time,
    set_partition_leader_epoch,
)
from streamclient.protocol.records.memory_records import AnyBatch, iter_batches, read_batch

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "NO_TIMESTAMP",
    "AnyBatch",
    "BatchHeader",
    "Compression",
    "CompressionRatioEstimator",
    "ControlRecord",
    "ControlRecordType",
    "Header",
    "LegacyBatch",
    "LegacyRecordBatchBuilder",
    "Record",
    "RecordBatch",
    "RecordBatchBuilder",
    "TimestampType",
    "build_control_batch",
    "compress",
    "decompress",
    "iter_batches",
    "read_batch",
    "read_batch_header",
    "set_base_offset",
    "set_log_append_time",
    "set_partition_leader_epoch",
]
