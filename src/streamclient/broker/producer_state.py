"""Idempotent and transactional producer state of one partition (Kafka's ProducerStateManager).

Per producer id the partition keeps the epoch and the metadata of the producer's last
five batches: a retry of any of them is a duplicate and is answered with the offsets
it got the first time, without a second append (five is the client's limit of
in-flight requests per connection when idempotence is on).

The rules, as Kafka's broker applies them (current Kafka, KIP-360 semantics):

* epoch lower than the partition's current epoch -> INVALID_PRODUCER_EPOCH, at every
  produce version: KIP-588 made the partition's check abortable rather than fatal and
  KAFKA-10687 (2.7) pinned produce responses to INVALID_PRODUCER_EPOCH; PRODUCER_FENCED
  is the transaction coordinator's answer, not the partition's.
* a higher epoch must start at sequence 0 -> else OUT_OF_ORDER_SEQUENCE_NUMBER
  (unless the partition has no epoch for the producer at all).
* same epoch: the first sequence must follow the last one (int32 max wraps to 0)
  -> else OUT_OF_ORDER_SEQUENCE_NUMBER.
* a producer the partition has no state for (new, or its state was removed with the
  data by retention/DeleteRecords) is accepted at any sequence. Since Kafka 2.5 the
  broker no longer answers UNKNOWN_PRODUCER_ID for this: the client resets sequences
  itself when it sees its data gone (KIP-360), and a fresh producer always starts at 0.
* a non-transactional batch while the producer has an open transaction -> INVALID_TXN_STATE.

Everything here is rebuilt by replaying batch headers (``replay_batch``/``on_marker``),
which is how a disk store recovers it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from streamclient.broker.log.results import AppendError, Err

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
INT32_MAX = (1 << 31) - 1
# the client keeps at most five requests in flight per partition with idempotence on
BATCHES_KEPT = 5


class BatchHeader(Protocol):
    """The header fields producer state reads (``RecordBatch`` provides them)."""

    @property
    def producer_id(self) -> int: ...
    @property
    def producer_epoch(self) -> int: ...
    @property
    def base_sequence(self) -> int: ...
    @property
    def last_offset_delta(self) -> int: ...
    @property
    def max_timestamp(self) -> int: ...
    @property
    def is_transactional(self) -> bool: ...


def last_sequence(base_sequence: int, last_offset_delta: int) -> int:
    """Sequence of a batch's last record; sequences wrap from int32 max to 0."""
    if base_sequence < 0:
        return NO_SEQUENCE
    return (base_sequence + last_offset_delta) % (INT32_MAX + 1)


def in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


@dataclass(frozen=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass(frozen=True)
class CompletedTxn:
    producer_id: int
    first_offset: int
    # offset of the COMMIT/ABORT marker
    last_offset: int
    aborted: bool


class ProducerEntry:
    __slots__ = ("batches", "coordinator_epoch", "current_txn_first_offset", "last_timestamp",
                 "producer_epoch", "producer_id")

    def __init__(self, producer_id: int, producer_epoch: int) -> None:
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.coordinator_epoch = -1
        self.batches: deque[BatchMetadata] = deque(maxlen=BATCHES_KEPT)
        self.current_txn_first_offset: int | None = None
        self.last_timestamp = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE

    @property
    def last_offset(self) -> int:
        return self.batches[-1].last_offset if self.batches else -1

    def find_duplicate(self, epoch: int, first_seq: int, last_seq: int) -> BatchMetadata | None:
        if epoch != self.producer_epoch:
            return None
        for meta in self.batches:
            if meta.first_seq == first_seq and meta.last_seq == last_seq:
                return meta
        return None

    def bump_epoch(self, epoch: int) -> None:
        if epoch != self.producer_epoch:
            # sequences restart with a new epoch: old batches can no longer be duplicates
            self.producer_epoch = epoch
            self.batches.clear()


class ProducerStateManager:
    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}
        # producer id -> first offset of its open transaction
        self._ongoing: dict[int, int] = {}

    # -- data batches ---------------------------------------------------------------------
    def check_batch(self, batch: BatchHeader, *, origin: str = "client") -> BatchMetadata | None:
        """Validate an idempotent/transactional batch before it is written.

        Returns the metadata of the original batch when this one is a duplicate of one of
        the producer's last five; raises ``AppendError`` when the rules refuse it.
        """
        pid = batch.producer_id
        if pid == NO_PRODUCER_ID:
            if batch.is_transactional:
                raise AppendError(Err.INVALID_RECORD, "transactional batch without a producer id")
            return None
        epoch = batch.producer_epoch
        first_seq = batch.base_sequence
        last_seq = last_sequence(first_seq, batch.last_offset_delta)
        entry = self.producers.get(pid)
        if entry is not None and origin == "client":
            duplicate = entry.find_duplicate(epoch, first_seq, last_seq)
            if duplicate is not None:
                return duplicate
        if entry is not None and epoch < entry.producer_epoch:
            raise AppendError(
                Err.INVALID_PRODUCER_EPOCH,
                f"producer {pid} epoch {epoch} is older than the current epoch {entry.producer_epoch}")
        if origin == "client" and entry is not None and entry.producer_epoch != NO_PRODUCER_EPOCH:
            self._check_sequence(entry, epoch, first_seq)
        if (not batch.is_transactional and entry is not None
                and entry.current_txn_first_offset is not None):
            raise AppendError(
                Err.INVALID_TXN_STATE,
                f"producer {pid} has an open transaction but sent a non-transactional batch")
        return None

    @staticmethod
    def _check_sequence(entry: ProducerEntry, epoch: int, first_seq: int) -> None:
        if epoch != entry.producer_epoch:
            if first_seq != 0:
                raise AppendError(
                    Err.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"producer {entry.producer_id}: new epoch {epoch} must start at sequence 0, "
                    f"not {first_seq}")
            return
        if not in_sequence(entry.last_seq, first_seq):
            raise AppendError(
                Err.OUT_OF_ORDER_SEQUENCE_NUMBER,
                f"producer {entry.producer_id}: sequence {first_seq} does not follow "
                f"{entry.last_seq}")

    def on_append(self, batch: BatchHeader, first_offset: int, last_offset: int) -> None:
        """Record a batch that was written at ``first_offset..last_offset``."""
        pid = batch.producer_id
        if pid == NO_PRODUCER_ID:
            return
        entry = self.producers.get(pid)
        if entry is None:
            entry = self.producers[pid] = ProducerEntry(pid, batch.producer_epoch)
        elif batch.producer_epoch > entry.producer_epoch:
            entry.bump_epoch(batch.producer_epoch)
        if batch.base_sequence >= 0:
            entry.batches.append(BatchMetadata(
                batch.base_sequence, last_sequence(batch.base_sequence, batch.last_offset_delta),
                first_offset, last_offset, batch.max_timestamp))
        entry.last_timestamp = max(entry.last_timestamp, batch.max_timestamp)
        if batch.is_transactional and entry.current_txn_first_offset is None:
            entry.current_txn_first_offset = first_offset
            self._ongoing[pid] = first_offset

    # replaying the log runs the same bookkeeping without the checks
    replay_batch = on_append

    # -- transaction markers --------------------------------------------------------------
    def check_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int) -> None:
        entry = self.producers.get(producer_id)
        if entry is None:
            return
        if producer_epoch < entry.producer_epoch:
            raise AppendError(
                Err.INVALID_PRODUCER_EPOCH,
                f"marker epoch {producer_epoch} is older than producer {producer_id}'s "
                f"epoch {entry.producer_epoch}")
        if coordinator_epoch < entry.coordinator_epoch:
            raise AppendError(
                Err.TRANSACTION_COORDINATOR_FENCED,
                f"marker from coordinator epoch {coordinator_epoch}, the partition has seen "
                f"{entry.coordinator_epoch}")

    def on_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int,
                  commit: bool, marker_offset: int, timestamp: int = -1) -> CompletedTxn | None:
        """Close the producer's open transaction with a marker written at ``marker_offset``."""
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = self.producers[producer_id] = ProducerEntry(producer_id, producer_epoch)
        elif producer_epoch > entry.producer_epoch:
            entry.bump_epoch(producer_epoch)
        entry.coordinator_epoch = max(entry.coordinator_epoch, coordinator_epoch)
        entry.last_timestamp = max(entry.last_timestamp, timestamp)
        first = self._ongoing.pop(producer_id, None)
        entry.current_txn_first_offset = None
        if first is None:
            return None
        return CompletedTxn(producer_id, first, marker_offset, aborted=not commit)

    # -- queries ----------------------------------------------------------------------------
    def first_unstable_offset(self) -> int | None:
        return min(self._ongoing.values()) if self._ongoing else None

    def ongoing_transactions(self) -> dict[int, int]:
        return dict(self._ongoing)

    def truncate_before(self, log_start_offset: int) -> None:
        """Forget producers whose every batch now lies before the log start (DeleteRecords).

        Kafka drops such producers so a later batch from them is accepted at any sequence.
        """
        for pid, entry in list(self.producers.items()):
            if (entry.current_txn_first_offset is None and entry.batches
                    and entry.last_offset < log_start_offset):
                del self.producers[pid]
