"""Idempotent producing: producer id and epoch, per-partition sequences, and what to do
with a failed produce (the Java client's ``TransactionManager`` sequence half and
``Sender.completeBatch``/``canRetry``).

The broker accepts a batch from a producer id and epoch only if its base sequence is the
last one it accepted plus one; so the client assigns sequences when a batch is first
drained, keeps every drained batch "in flight" (ordered by sequence) until it is acked or
given up, and retries a batch only when it is the lowest in flight.  When sequences can no
longer be trusted (a gap after a failed batch, lost producer state) the producer bumps its
epoch (KIP-360): for an idempotent producer locally, with the in-flight batches of the
affected partitions rewritten to start again at 0.

:func:`handle_produce_error` turns one partition's error code into a
:class:`ProduceDecision` (retry, split, complete, fail) and updates this state the way the
Java client does; the sender applies the decision through the accumulator.
"""

from __future__ import annotations

import bisect
from enum import Enum
from typing import NamedTuple, Protocol

from streamclient.errors import (
    BrokerResponseError,
    ClusterAuthorizationFailedError,
    KafkaError,
    ProducerFenced,
    TransactionalIdAuthorizationFailed,
    UnsupportedVersionError,
    for_code,
)
from streamclient.producer.batch import NO_SEQUENCE, ProducerBatch, increment_sequence
from streamclient.structs import TopicPartition

__all__ = [
    "MAX_EPOCH",
    "Action",
    "IdempotenceState",
    "PartitionSequences",
    "ProduceDecision",
    "ProducerIdAndEpoch",
    "TransactionErrorSink",
    "handle_produce_error",
]

MAX_EPOCH = 32767  # Short.MAX_VALUE: one more bump needs a new producer id

NONE = 0
MESSAGE_TOO_LARGE = 10
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
DUPLICATE_SEQUENCE_NUMBER = 46
INVALID_PRODUCER_EPOCH = 47
UNKNOWN_PRODUCER_ID = 59

# Errors after which the producer can do nothing but close (Java's
# maybeTransitionToErrorState).
FATAL_ERRORS: tuple[type[BaseException], ...] = (
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    ProducerFenced,
    UnsupportedVersionError,
)


class ProducerIdAndEpoch(NamedTuple):
    producer_id: int
    epoch: int

    @property
    def is_valid(self) -> bool:
        return self.producer_id >= 0


NO_PRODUCER_ID = ProducerIdAndEpoch(-1, -1)


class PartitionSequences:
    """One partition's sequence state (Java's ``TxnPartitionEntry``)."""

    __slots__ = ("in_flight", "last_acked_offset", "last_acked_sequence", "next_sequence",
                 "producer_id_and_epoch")

    def __init__(self, producer_id_and_epoch: ProducerIdAndEpoch) -> None:
        # the id/epoch the sequences below belong to; differs from the producer's after a
        # bump until this partition's in-flight batches are done
        self.producer_id_and_epoch = producer_id_and_epoch
        self.next_sequence = 0
        self.last_acked_sequence = NO_SEQUENCE
        self.last_acked_offset = -1
        # drained and not yet acked or failed, ordered by base sequence
        self.in_flight: list[ProducerBatch] = []

    def start_sequences_at_beginning(self, pid_epoch: ProducerIdAndEpoch) -> None:
        """Renumber the in-flight batches from 0 under ``pid_epoch`` (after a bump)."""
        sequence = 0
        for batch in self.in_flight:
            batch.reset_producer_state(pid_epoch.producer_id, pid_epoch.epoch, sequence)
            sequence = increment_sequence(sequence, batch.record_count)
        self.producer_id_and_epoch = pid_epoch
        self.next_sequence = sequence
        self.last_acked_sequence = NO_SEQUENCE

    def __repr__(self) -> str:
        return (f"PartitionSequences(next={self.next_sequence}, "
                f"last_acked={self.last_acked_sequence}, in_flight="
                f"{[b.base_sequence for b in self.in_flight]})")


class TransactionErrorSink(Protocol):
    """What a transactional producer's state machine exposes to the sequence logic."""

    @property
    def has_fatal_error(self) -> bool: ...

    @property
    def is_completing(self) -> bool: ...

    def is_send_to_partition_allowed(self, tp: TopicPartition) -> bool: ...

    def transition_to_abortable_error(self, exc: BaseException) -> None: ...

    def transition_to_fatal_error(self, exc: BaseException) -> None: ...


class Action(Enum):
    COMPLETE = "complete"  # as a success (DUPLICATE_SEQUENCE_NUMBER: already written)
    RETRY = "retry"  # accumulator.reenqueue(batch, now_ms)
    SPLIT = "split"  # accumulator.split_and_reenqueue(batch)
    FAIL = "fail"  # accumulator.fail_batch(batch, error, adjust_sequences)


class ProduceDecision(NamedTuple):
    action: Action
    error: BaseException | None = None
    # FAIL only: whether later batches' sequences must close the gap this one leaves
    adjust_sequences: bool = False
    # the error says our metadata is stale (NOT_LEADER…): refresh before the retry
    refresh_metadata: bool = False


class IdempotenceState:
    """The producer id/epoch and every partition's sequences.

    ``transactional`` switches the rules that differ for a transactional producer (it
    aborts the transaction instead of bumping its epoch locally); a
    :class:`~streamclient.producer.transactions.TransactionManager` attaches itself as
    ``txn`` to receive abortable and fatal errors.
    """

    def __init__(self, *, transactional: bool = False, retries: int = 2**31 - 1,
                 delivery_timeout_ms: int = 120_000) -> None:
        self.transactional = transactional
        self.retries = retries
        self.delivery_timeout_ms = delivery_timeout_ms
        self.producer_id_and_epoch = NO_PRODUCER_ID
        self.partitions: dict[TopicPartition, PartitionSequences] = {}
        # partition -> the sequence after the last batch we gave up on while it was
        # possibly written: its fate is unknown until the batches before it resolve
        self.unresolved: dict[TopicPartition, int] = {}
        self.partitions_to_rewrite: set[TopicPartition] = set()
        self.epoch_bump_required = False
        # InitProducerId v3+ lets a transactional producer bump its epoch (KIP-360)
        self.coordinator_supports_epoch_bump = True
        self.txn: TransactionErrorSink | None = None
        self.fatal_error: BaseException | None = None

    # --- producer id ----------------------------------------------------------------------

    @property
    def has_producer_id(self) -> bool:
        return self.producer_id_and_epoch.is_valid

    def set_producer_id_and_epoch(self, producer_id: int, epoch: int) -> None:
        """From an InitProducerId response (or a local bump)."""
        self.producer_id_and_epoch = ProducerIdAndEpoch(producer_id, epoch)

    def reset_producer_id(self) -> None:
        """Forget the id: the sender must run InitProducerId before producing again."""
        self.producer_id_and_epoch = NO_PRODUCER_ID

    def reset_sequence_numbers(self) -> None:
        """After a transactional epoch bump: every partition starts again at 0."""
        self.partitions.clear()
        self.unresolved.clear()

    @property
    def has_fatal_error(self) -> bool:
        if self.txn is not None:
            return self.txn.has_fatal_error
        return self.fatal_error is not None

    # --- sequences ------------------------------------------------------------------------

    def entry(self, tp: TopicPartition) -> PartitionSequences:
        entry = self.partitions.get(tp)
        if entry is None:
            entry = self.partitions[tp] = PartitionSequences(self.producer_id_and_epoch)
        return entry

    def next_sequence(self, tp: TopicPartition) -> int:
        return self.entry(tp).next_sequence

    def last_acked_sequence(self, tp: TopicPartition) -> int:
        entry = self.partitions.get(tp)
        return entry.last_acked_sequence if entry is not None else NO_SEQUENCE

    def last_acked_offset(self, tp: TopicPartition) -> int:
        entry = self.partitions.get(tp)
        return entry.last_acked_offset if entry is not None else -1

    def has_in_flight(self, tp: TopicPartition) -> bool:
        entry = self.partitions.get(tp)
        return entry is not None and bool(entry.in_flight)

    def first_in_flight_sequence(self, tp: TopicPartition) -> int:
        entry = self.partitions.get(tp)
        if entry is None or not entry.in_flight:
            return NO_SEQUENCE
        return entry.in_flight[0].base_sequence

    def has_stale_producer_id_and_epoch(self, tp: TopicPartition) -> bool:
        return self.entry(tp).producer_id_and_epoch != self.producer_id_and_epoch

    def has_unresolved_sequence(self, tp: TopicPartition) -> bool:
        return tp in self.unresolved

    def is_next_sequence(self, tp: TopicPartition, sequence: int) -> bool:
        return sequence - self.last_acked_sequence(tp) == 1

    # --- the drain gate and sequence assignment ----------------------------------------

    def should_stop_drain(self, batch: ProducerBatch) -> bool:
        """Whether this partition's head batch must wait (Java's
        ``shouldStopDrainBatchesForPartition``)."""
        tp = batch.topic_partition
        if self.txn is not None and not self.txn.is_send_to_partition_allowed(tp):
            return True
        if not self.producer_id_and_epoch.is_valid:
            return True
        if not batch.has_sequence:
            # a new batch with the new epoch and sequence 0 must not overtake batches
            # still in flight under the old epoch, nor go out while a gap is unresolved
            if self.has_in_flight(tp) and self.has_stale_producer_id_and_epoch(tp):
                return True
            if tp in self.unresolved:
                return True
        first = self.first_in_flight_sequence(tp)
        # a retried batch goes out only when it is the oldest in flight: while retrying,
        # a partition has one request in flight, so the retry cannot be reordered
        return first != NO_SEQUENCE and batch.has_sequence and batch.base_sequence != first

    def assign_sequence(self, batch: ProducerBatch) -> None:
        """At drain, for a batch without a sequence: stamp it and track it in flight."""
        tp = batch.topic_partition
        entry = self.entry(tp)
        if entry.producer_id_and_epoch != self.producer_id_and_epoch and not entry.in_flight:
            # everything under the old epoch is done: this partition starts again at 0
            entry.start_sequences_at_beginning(self.producer_id_and_epoch)
        pid_epoch = self.producer_id_and_epoch
        batch.set_producer_state(pid_epoch.producer_id, pid_epoch.epoch, entry.next_sequence,
                                 self.transactional)
        entry.next_sequence = increment_sequence(entry.next_sequence, batch.record_count)
        self.add_in_flight(batch)

    def add_in_flight(self, batch: ProducerBatch) -> None:
        entry = self.entry(batch.topic_partition)
        bisect.insort(entry.in_flight, batch, key=_base_sequence)

    def remove_in_flight(self, batch: ProducerBatch) -> None:
        entry = self.partitions.get(batch.topic_partition)
        if entry is None:
            return
        for i, other in enumerate(entry.in_flight):
            if other is batch:
                del entry.in_flight[i]
                return

    # --- outcomes -------------------------------------------------------------------------

    def handle_completed_batch(self, batch: ProducerBatch, base_offset: int) -> None:
        tp = batch.topic_partition
        entry = self.partitions.get(tp)
        self.remove_in_flight(batch)
        if entry is None or not batch.has_sequence:
            return
        if (batch.producer_id, batch.producer_epoch) != entry.producer_id_and_epoch:
            return  # acked under an epoch this partition has moved past
        last = batch.last_sequence
        if last > entry.last_acked_sequence:
            entry.last_acked_sequence = last
        if base_offset >= 0:
            last_offset = base_offset + batch.record_count - 1
            if last_offset > entry.last_acked_offset:
                entry.last_acked_offset = last_offset

    def handle_failed_batch(self, batch: ProducerBatch, exc: BaseException,
                            adjust_sequences: bool) -> None:
        self._maybe_transition_to_error_state(exc)
        self.remove_in_flight(batch)
        if self.has_fatal_error:
            return
        if _is_out_of_order(exc) and not self.transactional:
            self.request_epoch_bump(batch.topic_partition)
            return
        if adjust_sequences:
            if not self.transactional:
                self.request_epoch_bump(batch.topic_partition)
            else:
                self.adjust_sequences_due_to_failed_batch(batch)

    def _maybe_transition_to_error_state(self, exc: BaseException) -> None:
        if isinstance(exc, FATAL_ERRORS):
            if self.txn is not None:
                self.txn.transition_to_fatal_error(exc)
            elif self.fatal_error is None:
                self.fatal_error = exc
        elif self.txn is not None:
            if self.coordinator_supports_epoch_bump and not self.txn.is_completing:
                self.epoch_bump_required = True
            self.txn.transition_to_abortable_error(exc)

    def adjust_sequences_due_to_failed_batch(self, batch: ProducerBatch) -> None:
        """Transactional: close the gap a failed batch leaves, shifting later batches."""
        tp = batch.topic_partition
        entry = self.partitions.get(tp)
        if entry is None or not batch.has_sequence:
            return
        if (batch.producer_id, batch.producer_epoch) != self.producer_id_and_epoch:
            return  # from an older epoch: its sequences are void anyway
        count = batch.record_count
        entry.next_sequence = max(0, entry.next_sequence - count)
        for other in entry.in_flight:
            if other.base_sequence < batch.base_sequence:
                continue
            new_sequence = other.base_sequence - count
            if new_sequence < 0:
                raise KafkaError(
                    f"sequence of {other!r} would go negative after failing {batch!r}")
            other.reset_producer_state(other.producer_id, other.producer_epoch, new_sequence)

    def mark_sequence_unresolved(self, batch: ProducerBatch) -> None:
        """A batch that may have been written expired: hold the partition's new batches
        until the batches before it tell us whether it was."""
        next_sequence = increment_sequence(batch.last_sequence, 1)
        current = self.unresolved.get(batch.topic_partition)
        self.unresolved[batch.topic_partition] = (
            next_sequence if current is None else max(current, next_sequence))

    def maybe_resolve_sequences(self) -> None:
        """Run at the start of each sender pass (Java's ``maybeResolveSequences``)."""
        for tp in list(self.unresolved):
            if self.has_in_flight(tp):
                continue
            if not self.is_next_sequence(tp, self.next_sequence(tp)):
                # every batch after the unknown one was given up too: the gap is real
                if not self.transactional:
                    self.request_epoch_bump(tp)
                elif self.txn is not None:
                    message = ("The client has no acknowledgement for some records it can no "
                               "longer retry. ")
                    if self.coordinator_supports_epoch_bump:
                        self.epoch_bump_required = True
                        self.txn.transition_to_abortable_error(KafkaError(
                            message + "It is safe to abort the transaction and continue."))
                    else:
                        self.txn.transition_to_fatal_error(KafkaError(
                            message + "It is not safe to continue."))
            del self.unresolved[tp]

    # --- epoch bumps (KIP-360) ------------------------------------------------------------

    def request_epoch_bump(self, tp: TopicPartition | None = None) -> None:
        self.epoch_bump_required = True
        if tp is not None:
            self.partitions_to_rewrite.add(tp)

    def bump_epoch_and_reset_id_if_needed(self) -> bool:
        """Idempotent producers, at the start of each sender pass: apply a requested bump
        locally; return whether an InitProducerId is needed (no producer id)."""
        if self.transactional:
            return False
        if self.epoch_bump_required:
            self.bump_idempotent_epoch()
        return not self.has_producer_id

    def bump_idempotent_epoch(self) -> None:
        pid_epoch = self.producer_id_and_epoch
        if pid_epoch.epoch >= MAX_EPOCH or not pid_epoch.is_valid:
            # the epoch would overflow: a new producer id starts at epoch 0
            self.reset_producer_id()
        else:
            self.producer_id_and_epoch = ProducerIdAndEpoch(
                pid_epoch.producer_id, pid_epoch.epoch + 1)
        for tp in self.partitions_to_rewrite:
            entry = self.partitions.get(tp)
            if entry is not None:
                entry.start_sequences_at_beginning(self.producer_id_and_epoch)
            self.unresolved.pop(tp, None)
        self.partitions_to_rewrite.clear()
        self.epoch_bump_required = False

    # --- deciding on a failed produce -------------------------------------------------------

    def can_retry(self, batch: ProducerBatch, error_code: int, log_start_offset: int) -> bool:
        """The sequence-aware part of "may this batch be retried" (Java's
        ``TransactionManager.canRetry``); may request an epoch bump or renumber."""
        tp = batch.topic_partition
        if error_code == UNKNOWN_PRODUCER_ID:
            if log_start_offset == -1:
                # the broker could not tell where its log starts: ask again
                return True
            if batch.sequence_has_been_reset:
                # renumbered by an earlier UNKNOWN_PRODUCER_ID: not a new loss
                return True
            if self.last_acked_offset(tp) < log_start_offset:
                # retention deleted everything we wrote, and the broker forgot us with it
                if self.transactional:
                    self.entry(tp).start_sequences_at_beginning(self.producer_id_and_epoch)
                else:
                    self.request_epoch_bump(tp)
                return True
            if not self.transactional:
                self.request_epoch_bump(tp)
                return True
            return False
        if error_code == OUT_OF_ORDER_SEQUENCE_NUMBER:
            unresolved = tp in self.unresolved
            if not unresolved and (
                batch.sequence_has_been_reset
                or not self.is_next_sequence(tp, batch.base_sequence)
            ):
                # an earlier batch failed; this one will be renumbered or retried in order
                return True
            if not self.transactional:
                if not unresolved or self.unresolved[tp] == batch.base_sequence:
                    # a real gap right here: bump and start over
                    self.request_epoch_bump(tp)
                return True
            return False
        return for_code(error_code).kafka_retriable

    def handle_produce_error(self, batch: ProducerBatch, error_code: int,
                             log_start_offset: int, now_ms: int,
                             error_message: str | None = None) -> ProduceDecision:
        return handle_produce_error(
            batch, error_code, log_start_offset, now_ms, retries=self.retries,
            delivery_timeout_ms=self.delivery_timeout_ms, state=self,
            error_message=error_message)


def _base_sequence(batch: ProducerBatch) -> int:
    return batch.base_sequence


def _is_out_of_order(exc: BaseException) -> bool:
    # Java's UnknownProducerIdException extends OutOfOrderSequenceException
    return isinstance(exc, BrokerResponseError) and exc.errno in (
        OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID)


def handle_produce_error(batch: ProducerBatch, error_code: int, log_start_offset: int,
                         now_ms: int, *, retries: int, delivery_timeout_ms: int,
                         state: IdempotenceState | None = None,
                         error_message: str | None = None) -> ProduceDecision:
    """Decide what happens to ``batch`` after its partition answered ``error_code``
    (Java's ``Sender.completeBatch``), in Java's order: split, retry, duplicate, fail.

    Timeouts and disconnects arrive here as REQUEST_TIMED_OUT (7) and NETWORK_EXCEPTION
    (13), both retriable.
    """
    error_cls = for_code(error_code)
    if error_code == MESSAGE_TOO_LARGE and batch.record_count > 1 and not batch.is_done:
        # the broker's limit is below our batch: re-pack smaller (attempts unchanged)
        return ProduceDecision(Action.SPLIT, error_cls(error_message) if error_message
                               else error_cls())
    if (not batch.has_reached_delivery_timeout(delivery_timeout_ms, now_ms)
            and batch.attempts < retries and not batch.is_done
            and (state.can_retry(batch, error_code, log_start_offset) if state is not None
                 else error_cls.kafka_retriable)):
        return ProduceDecision(Action.RETRY, refresh_metadata=error_cls.invalid_metadata)
    if error_code == DUPLICATE_SEQUENCE_NUMBER:
        # the broker has this batch already (and no longer its offset)
        return ProduceDecision(Action.COMPLETE)
    error = error_cls(error_message) if error_message else error_cls()
    return ProduceDecision(Action.FAIL, error, adjust_sequences=batch.attempts < retries,
                           refresh_metadata=error_cls.invalid_metadata)
