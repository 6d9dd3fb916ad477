"""What the log hands back to handlers: append and read results, and typed append errors.

Error codes are Kafka's numbers (``errors.tsv``); handlers put them straight into
responses, so the log speaks in codes rather than in client exception classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Err(IntEnum):
    """The Kafka error codes the data path produces."""

    NONE = 0
    UNKNOWN_SERVER_ERROR = -1
    OFFSET_OUT_OF_RANGE = 1
    CORRUPT_MESSAGE = 2
    UNKNOWN_TOPIC_OR_PARTITION = 3
    NOT_LEADER_OR_FOLLOWER = 6
    REQUEST_TIMED_OUT = 7
    MESSAGE_TOO_LARGE = 10
    INVALID_TOPIC_EXCEPTION = 17
    RECORD_LIST_TOO_LARGE = 18
    NOT_ENOUGH_REPLICAS = 19
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
    INVALID_REQUIRED_ACKS = 21
    INVALID_TIMESTAMP = 32
    UNSUPPORTED_VERSION = 35
    INVALID_REQUEST = 42
    UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45
    INVALID_PRODUCER_EPOCH = 47
    INVALID_TXN_STATE = 48
    TRANSACTION_COORDINATOR_FENCED = 52
    UNKNOWN_PRODUCER_ID = 59
    FENCED_LEADER_EPOCH = 74
    UNKNOWN_LEADER_EPOCH = 75
    UNSUPPORTED_COMPRESSION_TYPE = 76
    INVALID_RECORD = 87
    PRODUCER_FENCED = 90
    UNKNOWN_TOPIC_ID = 100
    OFFSET_NOT_AVAILABLE = 78


class AppendError(Exception):
    """An append the log refused; ``error_code`` goes into the produce response."""

    def __init__(self, error_code: Err, message: str,
                 record_errors: list[tuple[int, str]] | None = None) -> None:
        super().__init__(f"{error_code.name}: {message}")
        self.error_code = error_code
        self.message = message
        # (index of the record inside the batch, why) — ProduceResponse v8+ record_errors
        self.record_errors = record_errors or []


class ReadError(Exception):
    """A read the log refused (offset out of range)."""

    def __init__(self, error_code: Err, message: str) -> None:
        super().__init__(f"{error_code.name}: {message}")
        self.error_code = error_code
        self.message = message


@dataclass(frozen=True)
class AppendResult:
    base_offset: int
    last_offset: int
    # -1 unless the topic uses LogAppendTime (Kafka answers -1 for CreateTime topics)
    log_append_time: int
    log_start_offset: int
    # True when the batch repeated one of the producer's last five: nothing was written
    duplicate: bool = False


@dataclass(frozen=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    # offset of the ABORT marker
    last_offset: int


@dataclass
class ReadResult:
    records: bytes
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    aborted_transactions: list[AbortedTxn] = field(default_factory=list)
