"""The embedded broker's partition logs: storage, offsets, watermarks, transactions."""

from streamclient.broker.log.config import LogConfig, LogConfigError
from streamclient.broker.log.manager import LogManager
from streamclient.broker.log.memory import MemoryLogStore, MemorySegment
from streamclient.broker.log.partition import READ_COMMITTED, READ_UNCOMMITTED, PartitionLog
from streamclient.broker.log.results import (
    AbortedTxn,
    AppendError,
    AppendResult,
    Err,
    ReadError,
    ReadResult,
)
from streamclient.broker.log.store import LogStore, Segment
from streamclient.broker.log.waiters import DataWaiter, wait_for_data

__all__ = [
    "READ_COMMITTED",
    "READ_UNCOMMITTED",
    "AbortedTxn",
    "AppendError",
    "AppendResult",
    "DataWaiter",
    "Err",
    "LogConfig",
    "LogConfigError",
    "LogManager",
    "LogStore",
    "MemoryLogStore",
    "MemorySegment",
    "PartitionLog",
    "ReadError",
    "ReadResult",
    "Segment",
    "wait_for_data",
]
