"""``ProducerBatch``: the records bound for one partition, on their way to one request.

Wraps a :class:`~streamclient.protocol.records.RecordBatchBuilder` and carries what the
sender needs to retry it: creation time (for ``delivery_timeout_ms``), attempts, the time
of the last attempt and the backoff chosen then, and the producer id, epoch and base
sequence assigned when it was first drained.  One :class:`ProduceRequestResult` completes
all of its records' handles at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from streamclient.errors import RecordTooLargeError
from streamclient.producer.result import FutureRecordMetadata, ProduceRequestResult
from streamclient.protocol.records import RecordBatch, RecordBatchBuilder
from streamclient.protocol.records.builder import Header
from streamclient.structs import TopicPartition

__all__ = ["NO_SEQUENCE", "ProducerBatch", "increment_sequence"]

NO_SEQUENCE = -1
_INT32_MAX = 2**31 - 1

Bytes = bytes | bytearray | memoryview


def increment_sequence(sequence: int, increment: int) -> int:
    """Kafka's sequences wrap from int32 max back to 0 (``DefaultRecordBatch``)."""
    if sequence > _INT32_MAX - increment:
        return increment - (_INT32_MAX - sequence) - 1
    return sequence + increment


class ProducerBatch:
    __slots__ = (
        "attempts",
        "batch_size",
        "builder",
        "closed",
        "created_ms",
        "drained_ms",
        "final_state",
        "handle_class",
        "handles",
        "is_split_batch",
        "last_attempt_ms",
        "memory",
        "reopened",
        "result",
        "retry_backoff_ms",
        "topic_partition",
    )

    def __init__(self, topic_partition: TopicPartition, builder: RecordBatchBuilder,
                 created_ms: int, *, is_split_batch: bool = False, memory: int = 0,
                 handle_class: type[FutureRecordMetadata] = FutureRecordMetadata) -> None:
        self.topic_partition = topic_partition
        self.builder = builder
        self.batch_size = builder.batch_size
        self.created_ms = created_ms
        self.last_attempt_ms = created_ms
        self.drained_ms = created_ms
        self.attempts = 0
        # the backoff before the next attempt, drawn (with jitter) when it was re-enqueued,
        # so ready() and drain() agree on it
        self.retry_backoff_ms = 0.0
        self.result = ProduceRequestResult(topic_partition)
        self.handles: list[FutureRecordMetadata] = []
        # the per-record handle is what send() returns (the async producer's RecordFuture
        # subclass), so no second object per record wraps it
        self.handle_class = handle_class
        self.is_split_batch = is_split_batch
        # bytes reserved against buffer_memory, returned when the batch is deallocated
        self.memory = memory
        # True once the sequences were rewritten (epoch bump, failed-batch adjustment)
        self.reopened = False
        self.final_state: str | None = None  # "succeeded", "failed", "aborted"
        # closed for appends once built (drained); a retried batch back at the head of
        # its queue must not take new records
        self.closed = False

    # --- appending ---------------------------------------------------------------------

    def try_append(self, timestamp_ms: int, key: Bytes | None, value: Bytes | None,
                   headers: Sequence[Header]) -> FutureRecordMetadata | None:
        """Add a record; ``None`` if the batch has no room (the first record always fits)."""
        # RecordAccumulator.append inlines this for unkeyed records: keep the two alike
        if self.closed:
            return None
        delta = self.builder.append(timestamp_ms, key, value, headers)
        if delta is None:
            return None
        handle = self.handle_class(
            self.result, delta, timestamp_ms,
            -1 if key is None else len(key), -1 if value is None else len(value))
        self.handles.append(handle)
        return handle

    @property
    def record_count(self) -> int:
        return self.builder.record_count

    @property
    def estimated_size(self) -> int:
        return self.builder.estimated_size

    def is_full(self) -> bool:
        builder = self.builder
        return self.closed or (
            builder.record_count > 0 and builder.estimated_size >= self.batch_size)

    # --- producer state (idempotence) ----------------------------------------------------

    @property
    def producer_id(self) -> int:
        return self.builder.producer_id

    @property
    def producer_epoch(self) -> int:
        return self.builder.producer_epoch

    @property
    def base_sequence(self) -> int:
        return self.builder.base_sequence

    @property
    def has_sequence(self) -> bool:
        return self.builder.base_sequence != NO_SEQUENCE

    @property
    def last_sequence(self) -> int:
        base = self.builder.base_sequence
        if base == NO_SEQUENCE:
            return NO_SEQUENCE
        return increment_sequence(base, self.builder.record_count - 1)

    @property
    def is_transactional(self) -> bool:
        return self.builder.is_transactional

    def set_producer_state(self, producer_id: int, producer_epoch: int, base_sequence: int,
                           is_transactional: bool) -> None:
        """Assigned at drain, once; a retry keeps it (changing it could duplicate)."""
        self.builder.set_producer_state(producer_id, producer_epoch, base_sequence,
                                        is_transactional)

    def reset_producer_state(self, producer_id: int, producer_epoch: int,
                             base_sequence: int) -> None:
        """Rewrite an in-flight batch's sequence (KIP-360 epoch bump, failed-batch shift)."""
        self.reopened = True
        self.builder.set_producer_state(producer_id, producer_epoch, base_sequence)

    @property
    def sequence_has_been_reset(self) -> bool:
        return self.reopened

    # --- the sender's bookkeeping ---------------------------------------------------------

    @property
    def in_retry(self) -> bool:
        return self.attempts > 0

    def waited_ms(self, now_ms: int) -> int:
        return max(0, now_ms - self.last_attempt_ms)

    def is_backing_off(self, now_ms: int) -> bool:
        return self.attempts > 0 and now_ms - self.last_attempt_ms < self.retry_backoff_ms

    def reenqueued(self, now_ms: int, backoff_ms: float) -> None:
        self.attempts += 1
        self.last_attempt_ms = now_ms
        self.drained_ms = max(self.drained_ms, now_ms)
        self.retry_backoff_ms = backoff_ms

    def drained(self, now_ms: int) -> None:
        self.drained_ms = max(self.drained_ms, now_ms)

    def has_reached_delivery_timeout(self, delivery_timeout_ms: int, now_ms: int) -> bool:
        return delivery_timeout_ms <= now_ms - self.created_ms

    def close(self) -> None:
        """No more appends: the batch is being drained into a request."""
        self.closed = True

    def build(self) -> bytes:
        """The batch's bytes for a ProduceRequest (header rewritten on every call)."""
        self.closed = True
        return self.builder.build()

    # --- completion -------------------------------------------------------------------------

    @property
    def is_done(self) -> bool:
        return self.final_state is not None

    def done(self, base_offset: int, log_append_time: int = -1, log_start_offset: int = -1,
             error: BaseException | None = None,
             record_errors: dict[int, BaseException] | None = None) -> bool:
        """Complete every record; ``False`` if the batch was already completed (for
        example expired while its request was in flight), in which case nothing changes."""
        if self.final_state is not None:
            return False
        self.final_state = "succeeded" if error is None else "failed"
        result = self.result
        result.set(base_offset, log_append_time, log_start_offset, error, record_errors)
        result.done()
        for handle in self.handles:
            if handle._callbacks:
                handle._fire()
        return True

    def done_no_ack(self) -> bool:
        """acks=0: the batch is complete as soon as it is written to the socket."""
        self.result.no_ack = True
        return self.done(-1)

    def fail(self, exc: BaseException) -> bool:
        return self.done(-1, -1, -1, exc)

    def abort(self, exc: BaseException) -> None:
        """Fail without a response (producer closing, fatal error); never raises twice."""
        if self.final_state is None:
            self.done(-1, -1, -1, exc)
            self.final_state = "aborted"

    # --- splitting (MESSAGE_TOO_LARGE) ----------------------------------------------------

    def split(self, split_batch_size: int, ratio_estimate: float = 1.0) -> list[ProducerBatch]:
        """Re-pack the records into batches of at most ``split_batch_size`` bytes.

        Each record's handle is chained to its copy, so the application's handles follow
        the new batches.  If this batch had a sequence, the new ones get consecutive
        sequences from the same base, with the same producer id and epoch (their records
        keep the order and the numbers they had).  This batch is not completed here: the
        caller fails it once the new batches are queued (handles already point away).
        """
        if self.record_count < 2:
            raise RecordTooLargeError(
                f"a batch of {self.record_count} record(s) for {self.topic_partition} is "
                "too large for the broker and cannot be split")
        old = self.builder
        records = list(RecordBatch(old.build()))
        batches: list[ProducerBatch] = []
        current: ProducerBatch | None = None
        for record, handle in zip(records, self.handles, strict=True):
            if current is not None:
                new_handle = current.try_append(record.timestamp, record.key, record.value,
                                                record.headers)
            else:
                new_handle = None
            if new_handle is None:
                current = ProducerBatch(
                    self.topic_partition,
                    RecordBatchBuilder(old.compression, old.is_transactional,
                                       batch_size=split_batch_size,
                                       compression_ratio_estimate=ratio_estimate),
                    self.created_ms, is_split_batch=True, handle_class=self.handle_class)
                batches.append(current)
                new_handle = current.try_append(record.timestamp, record.key, record.value,
                                                record.headers)
                assert new_handle is not None  # the first record always fits
            # keep the application's sizes and its CreateTime (None was stored as now)
            new_handle.serialized_key_size = handle.serialized_key_size
            new_handle.serialized_value_size = handle.serialized_value_size
            new_handle.timestamp = handle.timestamp
            handle.chain(new_handle)
        if self.has_sequence:
            sequence = self.base_sequence
            for batch in batches:
                batch.set_producer_state(self.producer_id, self.producer_epoch, sequence,
                                         self.is_transactional)
                sequence = increment_sequence(sequence, batch.record_count)
        return batches

    def __repr__(self) -> str:
        seq = f", seq={self.base_sequence}" if self.has_sequence else ""
        return (f"ProducerBatch({self.topic_partition}, records={self.record_count}"
                f"{seq}, attempts={self.attempts})")

