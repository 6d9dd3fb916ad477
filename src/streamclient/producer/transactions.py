"""The transactional producer's state machine (Java's ``TransactionManager``), sans-IO.

The application moves it with :meth:`TransactionManager.initialize_transactions`,
:meth:`~TransactionManager.begin_transaction`, :meth:`~TransactionManager.begin_commit`,
:meth:`~TransactionManager.begin_abort` and
:meth:`~TransactionManager.send_offsets_to_transaction`; each returns a
:class:`TransactionalRequestResult` to wait on.  The sender asks
:meth:`~TransactionManager.next_request` for the next coordinator request, a
:class:`TxnRequest` that names the API, the coordinator it goes to and its fields, sends
it, and feeds the answer to the matching ``handle_*`` method.

An invalid transition asked for by the application raises
:class:`~streamclient.errors.IllegalStateError` and changes nothing (the Java client's
``IllegalStateException``; aiokafka raises a bare ``AssertionError``, which ``python -O``
strips and no caller can tell apart from a bug).  An invalid transition found while
handling a response puts the producer in FATAL_ERROR instead (KAFKA-14831): the sender
must never raise into the application.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any, NamedTuple

from streamclient.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    ProducerFencedError,
    for_code,
)
from streamclient.producer.idempotence import IdempotenceState
from streamclient.structs import OffsetAndMetadata, TopicPartition

__all__ = [
    "ConsumerGroupMetadata",
    "Priority",
    "TransactionManager",
    "TransactionState",
    "TransactionalRequestResult",
    "TxnRequest",
]

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
REQUEST_TIMED_OUT = 7
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
ILLEGAL_GENERATION = 22
UNKNOWN_MEMBER_ID = 25
TOPIC_AUTHORIZATION_FAILED = 29
GROUP_AUTHORIZATION_FAILED = 30
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
CONCURRENT_TRANSACTIONS = 51
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
OPERATION_NOT_ATTEMPTED = 55
UNKNOWN_PRODUCER_ID = 59
FENCED_INSTANCE_ID = 82
PRODUCER_FENCED = 90
TRANSACTION_ABORTABLE = 120

# Java's ADD_PARTITIONS_RETRY_BACKOFF_MS: the usual CONCURRENT_TRANSACTIONS right after a
# commit clears in a few ms; 100 ms would add most of that to every transaction.
CONCURRENT_TRANSACTIONS_BACKOFF_MS = 20

_COORDINATOR_MOVED = (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR)


class TransactionState(Enum):
    UNINITIALIZED = "UNINITIALIZED"
    INITIALIZING = "INITIALIZING"
    READY = "READY"
    IN_TRANSACTION = "IN_TRANSACTION"
    COMMITTING_TRANSACTION = "COMMITTING_TRANSACTION"
    ABORTING_TRANSACTION = "ABORTING_TRANSACTION"
    ABORTABLE_ERROR = "ABORTABLE_ERROR"
    FATAL_ERROR = "FATAL_ERROR"


S = TransactionState

# target -> states it may be entered from (Java's State.isTransitionValid)
VALID_SOURCES: dict[TransactionState, frozenset[TransactionState]] = {
    S.UNINITIALIZED: frozenset({S.READY, S.ABORTABLE_ERROR}),
    S.INITIALIZING: frozenset({S.UNINITIALIZED, S.ABORTING_TRANSACTION}),
    S.READY: frozenset({S.INITIALIZING, S.COMMITTING_TRANSACTION, S.ABORTING_TRANSACTION}),
    S.IN_TRANSACTION: frozenset({S.READY}),
    S.COMMITTING_TRANSACTION: frozenset({S.IN_TRANSACTION}),
    S.ABORTING_TRANSACTION: frozenset({S.IN_TRANSACTION, S.ABORTABLE_ERROR}),
    S.ABORTABLE_ERROR: frozenset({S.IN_TRANSACTION, S.COMMITTING_TRANSACTION,
                                  S.ABORTABLE_ERROR, S.INITIALIZING}),
    S.FATAL_ERROR: frozenset(TransactionState),
}


def is_transition_valid(source: TransactionState, target: TransactionState) -> bool:
    return source in VALID_SOURCES[target]


class Priority(IntEnum):
    """Order of queued coordinator requests (lower first)."""

    FIND_COORDINATOR = 0
    INIT_PRODUCER_ID = 1
    ADD_PARTITIONS_OR_OFFSETS = 2
    END_TXN = 3
    EPOCH_BUMP = 4


class ConsumerGroupMetadata(NamedTuple):
    """What TxnOffsetCommit needs to fence zombie consumers (KIP-447)."""

    group_id: str
    generation_id: int = -1
    member_id: str = ""
    group_instance_id: str | None = None


class TransactionalRequestResult:
    """The outcome of initialize/commit/abort/send-offsets: waitable from a thread,
    observable by callback from an event loop."""

    __slots__ = ("_callbacks", "_event", "error", "is_done", "operation")

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.is_done = False
        self.error: BaseException | None = None
        self._event = threading.Event()
        self._callbacks: list[Callable[[TransactionalRequestResult], None]] = []

    def done(self, error: BaseException | None = None) -> None:
        if self.is_done:
            return
        self.error = error
        self.is_done = True
        self._event.set()
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(self)

    def add_done_callback(self, fn: Callable[[TransactionalRequestResult], None]) -> None:
        if self.is_done:
            fn(self)
        else:
            self._callbacks.append(fn)

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def __repr__(self) -> str:
        return f"TransactionalRequestResult({self.operation}, done={self.is_done})"


@dataclass(eq=False)
class TxnRequest:
    """One coordinator request for the sender to send.

    ``api`` is the Kafka API name (``"InitProducerId"``, ``"AddPartitionsToTxn"``,
    ``"AddOffsetsToTxn"``, ``"TxnOffsetCommit"``, ``"EndTxn"``, ``"FindCoordinator"``);
    ``coordinator`` is ``"transaction"`` or ``"group"`` (the coordinator of
    ``coordinator_key``); ``fields`` are the request's fields in snake case.
    """

    api: str
    coordinator: str
    coordinator_key: str
    priority: Priority
    fields: dict[str, Any]
    result: TransactionalRequestResult | None = None
    not_before_ms: int = 0
    is_epoch_bump: bool = False
    attempts: int = 0
    # TxnOffsetCommit: the partitions still to commit
    pending_offsets: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)


class TransactionManager:
    def __init__(self, transactional_id: str, transaction_timeout_ms: int,
                 idempotence: IdempotenceState, *, retry_backoff_ms: int = 100) -> None:
        self.transactional_id = transactional_id
        self.transaction_timeout_ms = transaction_timeout_ms
        self.idempotence = idempotence
        idempotence.transactional = True
        idempotence.txn = self
        self.retry_backoff_ms = retry_backoff_ms
        self.state = S.UNINITIALIZED
        self.last_error: BaseException | None = None
        self.transaction_started = False
        self.new_partitions: set[TopicPartition] = set()
        self.pending_partitions: set[TopicPartition] = set()
        self.partitions_in_transaction: set[TopicPartition] = set()
        self.coordinators: dict[str, int | None] = {"transaction": None, "group": None}
        self._queue: list[tuple[int, int, TxnRequest]] = []
        self._counter = itertools.count()
        self.in_flight: TxnRequest | None = None
        self._pending_transition: tuple[str, TransactionalRequestResult] | None = None
        self._end_result: TransactionalRequestResult | None = None

    # --- state --------------------------------------------------------------------------

    @property
    def has_fatal_error(self) -> bool:
        return self.state is S.FATAL_ERROR

    @property
    def has_abortable_error(self) -> bool:
        return self.state is S.ABORTABLE_ERROR

    @property
    def has_error(self) -> bool:
        return self.state in (S.FATAL_ERROR, S.ABORTABLE_ERROR)

    @property
    def is_completing(self) -> bool:
        return self.state in (S.COMMITTING_TRANSACTION, S.ABORTING_TRANSACTION)

    @property
    def is_in_transaction(self) -> bool:
        return self.state in (S.IN_TRANSACTION, S.COMMITTING_TRANSACTION,
                              S.ABORTING_TRANSACTION, S.ABORTABLE_ERROR)

    @property
    def has_ongoing_transaction(self) -> bool:
        return self.is_in_transaction

    @property
    def epoch_bump_required(self) -> bool:
        return self.idempotence.epoch_bump_required

    def _transition(self, target: TransactionState, error: BaseException | None = None,
                    *, from_application: bool = True) -> None:
        if not is_transition_valid(self.state, target):
            message = (f"TransactionalId {self.transactional_id}: invalid transition "
                       f"attempted from state {self.state.name} to state {target.name}")
            if from_application:
                raise IllegalStateError(message)
            # a response handler found the state inconsistent: stop the producer
            # rather than raise into the sender (KAFKA-14831)
            self.last_error = IllegalStateError(message)
            self.state = S.FATAL_ERROR
            return
        if target in (S.FATAL_ERROR, S.ABORTABLE_ERROR):
            self.last_error = error
        else:
            self.last_error = None
        self.state = target

    def transition_to_abortable_error(self, exc: BaseException) -> None:
        if self.state is S.ABORTING_TRANSACTION:
            return  # already aborting: the abort will clear it
        self._transition(S.ABORTABLE_ERROR, exc, from_application=False)

    def transition_to_fatal_error(self, exc: BaseException) -> None:
        self._transition(S.FATAL_ERROR, exc, from_application=False)
        self._fail_queued(exc)

    def _abortable_error_if_possible(self, exc: BaseException) -> None:
        # KIP-360: with InitProducerId v3+ an abort plus an epoch bump recovers
        if self.idempotence.coordinator_supports_epoch_bump:
            self.idempotence.epoch_bump_required = True
            self.transition_to_abortable_error(exc)
        else:
            self.transition_to_fatal_error(exc)

    def maybe_fail_with_error(self) -> None:
        """Raise the stored error if the producer is in an error state."""
        if self.has_error:
            error = self.last_error
            if isinstance(error, BaseException):
                raise error
            raise KafkaError(f"the transactional producer is in state {self.state.name}")

    # --- application calls ------------------------------------------------------------

    def initialize_transactions(self) -> TransactionalRequestResult:
        cached = self._cached("initialize_transactions")
        if cached is not None:
            return cached
        self._transition(S.INITIALIZING)
        self.idempotence.reset_producer_id()
        result = TransactionalRequestResult("initialize_transactions")
        self._enqueue(self._init_producer_id_request(result, bump=False))
        self._pending_transition = ("initialize_transactions", result)
        return result

    def begin_transaction(self) -> None:
        self.maybe_fail_with_error()
        self._transition(S.IN_TRANSACTION)

    def begin_commit(self) -> TransactionalRequestResult:
        cached = self._cached("commit_transaction")
        if cached is not None:
            return cached
        self.maybe_fail_with_error()
        self._transition(S.COMMITTING_TRANSACTION)
        return self._begin_completing(commit=True, previous_error=None)

    def begin_abort(self) -> TransactionalRequestResult:
        cached = self._cached("abort_transaction")
        if cached is not None:
            return cached
        if self.has_fatal_error:
            self.maybe_fail_with_error()
        previous_error = self.last_error
        self._transition(S.ABORTING_TRANSACTION)
        # nothing new joins a transaction that is going away
        self.new_partitions.clear()
        return self._begin_completing(commit=False, previous_error=previous_error)

    def _cached(self, operation: str) -> TransactionalRequestResult | None:
        """A call that timed out may be repeated: it gets the same pending result."""
        pending = self._pending_transition
        if pending is None or pending[1].is_done:
            self._pending_transition = None
            return None
        if pending[0] != operation:
            raise IllegalStateError(
                f"cannot {operation} while a previous {pending[0]} is pending")
        return pending[1]

    def _begin_completing(self, *, commit: bool,
                          previous_error: BaseException | None) -> TransactionalRequestResult:
        name = "commit_transaction" if commit else "abort_transaction"
        result = TransactionalRequestResult(name)
        self._pending_transition = (name, result)
        if isinstance(previous_error, for_code(INVALID_PRODUCER_ID_MAPPING)):
            # the coordinator forgot us and would refuse EndTxn: go straight to the bump
            self._end_result = result
            self._enqueue(self._init_producer_id_request(result, bump=True))
            return result
        pid_epoch = self.idempotence.producer_id_and_epoch
        self._enqueue(TxnRequest(
            "EndTxn", "transaction", self.transactional_id, Priority.END_TXN,
            {"transactional_id": self.transactional_id,
             "producer_id": pid_epoch.producer_id,
             "producer_epoch": pid_epoch.epoch, "committed": commit},
            result=result))
        return result

    def maybe_add_partition(self, tp: TopicPartition) -> None:
        """After appending a record to ``tp`` inside a transaction."""
        self.fail_if_not_ready_for_send()
        if tp not in self.partitions_in_transaction and tp not in self.pending_partitions:
            self.new_partitions.add(tp)

    def fail_if_not_ready_for_send(self) -> None:
        """Before appending: a transactional producer sends only inside a transaction."""
        if self.has_error:
            self.maybe_fail_with_error()
        if not self.idempotence.has_producer_id:
            raise IllegalStateError(
                "Cannot perform a send before initialize_transactions() has completed")
        if self.state is not S.IN_TRANSACTION:
            raise IllegalStateError(f"Cannot call send in state {self.state.name}")

    def is_send_to_partition_allowed(self, tp: TopicPartition) -> bool:
        if self.has_fatal_error:
            return False
        return tp in self.partitions_in_transaction

    def is_partition_pending_add(self, tp: TopicPartition) -> bool:
        return tp in self.new_partitions or tp in self.pending_partitions

    def send_offsets_to_transaction(
            self, offsets: Mapping[TopicPartition, OffsetAndMetadata | int],
            group_metadata: ConsumerGroupMetadata | str) -> TransactionalRequestResult:
        """AddOffsetsToTxn, then TxnOffsetCommit to the group's coordinator."""
        self.maybe_fail_with_error()
        if self.state is not S.IN_TRANSACTION:
            raise IllegalStateError(
                "Cannot send offsets if a transaction is not in progress "
                f"(currentState= {self.state.name})")
        if isinstance(group_metadata, str):
            group_metadata = ConsumerGroupMetadata(group_metadata)
        if not group_metadata.group_id:
            raise IllegalStateError("send_offsets_to_transaction needs a group id")
        normalised = {
            tp: value if isinstance(value, OffsetAndMetadata) else OffsetAndMetadata(value, "")
            for tp, value in offsets.items()}
        result = TransactionalRequestResult("send_offsets_to_transaction")
        pid_epoch = self.idempotence.producer_id_and_epoch
        request = TxnRequest(
            "AddOffsetsToTxn", "transaction", self.transactional_id,
            Priority.ADD_PARTITIONS_OR_OFFSETS,
            {"transactional_id": self.transactional_id, "producer_id": pid_epoch.producer_id,
             "producer_epoch": pid_epoch.epoch, "group_id": group_metadata.group_id},
            result=result, pending_offsets=normalised)
        request.fields["_group_metadata"] = group_metadata
        self._enqueue(request)
        return result

    # --- the sender's side ---------------------------------------------------------------

    def next_request(self, now_ms: int, has_incomplete_batches: bool) -> TxnRequest | None:
        """The next request to send (one at a time), or ``None``.

        Partitions added since the last call go out as one AddPartitionsToTxn; EndTxn
        waits until every batch of the transaction is acknowledged; an EndTxn for a
        transaction that never added anything completes locally.
        """
        if self.in_flight is not None:
            return None
        if self.new_partitions and not self.has_error:
            self._enqueue(self._add_partitions_request())
        while self._queue:
            request = self._queue[0][2]
            if request.api == "EndTxn" and has_incomplete_batches:
                return None
            if request.not_before_ms > now_ms:
                return None
            heapq.heappop(self._queue)
            if self.has_error and request.api != "FindCoordinator":
                # an abortable error lets only the abort through (whose EndTxn is
                # queued after the transition clears the error)
                request_error = self.last_error or KafkaError(self.state.name)
                if request.result is not None:
                    request.result.done(request_error)
                continue
            if request.api == "EndTxn" and not self.transaction_started:
                self._complete_transaction(request.result)
                continue
            key = self.coordinators.get(request.coordinator)
            if key is None and request.api != "FindCoordinator":
                self._lookup_coordinator(request.coordinator, request.coordinator_key)
                self._requeue(request, now_ms, backoff=False)
                continue
            self.in_flight = request
            return request
        return None

    def coordinator_for(self, request: TxnRequest) -> int | None:
        return self.coordinators.get(request.coordinator)

    def pending_partitions_to_add(self) -> set[TopicPartition]:
        return set(self.new_partitions)

    # --- responses ----------------------------------------------------------------------

    def handle_request_failure(self, request: TxnRequest, now_ms: int) -> None:
        """The request got no answer (disconnect, timeout): find the coordinator again
        and retry."""
        self._done_in_flight(request)
        if request.api != "FindCoordinator":
            self.coordinators[request.coordinator] = None
        self._requeue(request, now_ms)

    def handle_find_coordinator(self, request: TxnRequest, error_code: int,
                                node_id: int, now_ms: int) -> None:
        self._done_in_flight(request)
        kind = request.fields["key_type_name"]
        if error_code == NONE:
            self.coordinators[kind] = node_id
        elif error_code in (TRANSACTIONAL_ID_AUTHORIZATION_FAILED,):
            self.transition_to_fatal_error(for_code(error_code)())
        elif error_code == GROUP_AUTHORIZATION_FAILED:
            self.transition_to_abortable_error(for_code(error_code)())
        else:
            self._requeue(request, now_ms)

    def handle_init_producer_id(self, request: TxnRequest, error_code: int,
                                producer_id: int, producer_epoch: int, now_ms: int) -> None:
        self._done_in_flight(request)
        if error_code == NONE:
            self.idempotence.set_producer_id_and_epoch(producer_id, producer_epoch)
            if request.is_epoch_bump:
                self.idempotence.reset_sequence_numbers()
                self.idempotence.epoch_bump_required = False
            self._transition(S.READY, from_application=False)
            self.transaction_started = False
            self.partitions_in_transaction.clear()
            self._finish(request.result)
        elif error_code in _COORDINATOR_MOVED:
            self._coordinator_moved(request, now_ms)
        elif error_code in (COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS):
            self._requeue(request, now_ms)
        elif error_code in (INVALID_PRODUCER_EPOCH, PRODUCER_FENCED):
            self._fenced(request)
        else:
            self._fatal(request, error_code)

    def handle_add_partitions(self, request: TxnRequest, results: Mapping[TopicPartition, int],
                              now_ms: int) -> None:
        self._done_in_flight(request)
        partitions = set(request.fields["_partitions"])
        unauthorized: list[str] = []
        other_errors: dict[TopicPartition, int] = {}
        retry = False
        for tp in partitions:
            code = results.get(tp, NONE)
            if code == NONE:
                continue
            if code in _COORDINATOR_MOVED:
                self._coordinator_moved(request, now_ms)
                return
            if code in (CONCURRENT_TRANSACTIONS, COORDINATOR_LOAD_IN_PROGRESS,
                        UNKNOWN_TOPIC_OR_PARTITION):
                retry = True
            elif code in (INVALID_PRODUCER_EPOCH, PRODUCER_FENCED):
                self._fenced(request)
                return
            elif code in (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, INVALID_TXN_STATE):
                self._fatal(request, code)
                return
            elif code in (UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_ID_MAPPING):
                self.pending_partitions -= partitions
                self._abortable_error_if_possible(for_code(code)())
                return
            elif code == TOPIC_AUTHORIZATION_FAILED:
                unauthorized.append(tp.topic)
            elif code == OPERATION_NOT_ATTEMPTED:
                continue  # another partition's error stopped it; reported there
            elif code == TRANSACTION_ABORTABLE:
                other_errors[tp] = code
            else:
                self._fatal(request, code)
                return
        if retry:
            backoff = None
            if not self.partitions_in_transaction:
                backoff = CONCURRENT_TRANSACTIONS_BACKOFF_MS
            self._requeue(request, now_ms, backoff_ms=backoff)
            return
        self.pending_partitions -= partitions
        if unauthorized:
            self.transition_to_abortable_error(for_code(TOPIC_AUTHORIZATION_FAILED)(
                f"not authorized to write to topics {sorted(set(unauthorized))}"))
        elif other_errors:
            self.transition_to_abortable_error(KafkaError(
                f"could not add partitions to the transaction: {other_errors}"))
        else:
            self.partitions_in_transaction |= partitions
            self.transaction_started = True

    def handle_add_offsets(self, request: TxnRequest, error_code: int, now_ms: int) -> None:
        self._done_in_flight(request)
        if error_code == NONE:
            self.transaction_started = True
            metadata: ConsumerGroupMetadata = request.fields["_group_metadata"]
            self._enqueue(self._txn_offset_commit_request(request, metadata))
        elif error_code in _COORDINATOR_MOVED:
            self._coordinator_moved(request, now_ms)
        elif error_code in (COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS):
            self._requeue(request, now_ms)
        elif error_code in (UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_ID_MAPPING):
            self._abortable_error_if_possible(for_code(error_code)())
            self._finish(request.result, self.last_error)
        elif error_code in (INVALID_PRODUCER_EPOCH, PRODUCER_FENCED):
            self._fenced(request)
        elif error_code in (GROUP_AUTHORIZATION_FAILED, TRANSACTION_ABORTABLE):
            self._abortable(request, for_code(error_code)())
        else:
            self._fatal(request, error_code)

    def handle_txn_offset_commit(self, request: TxnRequest,
                                 results: Mapping[TopicPartition, int], now_ms: int) -> None:
        self._done_in_flight(request)
        retry = False
        for tp, code in results.items():
            if code == NONE:
                request.pending_offsets.pop(tp, None)
            elif code in _COORDINATOR_MOVED:
                self._coordinator_moved(request, now_ms)
                return
            elif code in (COORDINATOR_LOAD_IN_PROGRESS, UNKNOWN_TOPIC_OR_PARTITION,
                          REQUEST_TIMED_OUT, CONCURRENT_TRANSACTIONS):
                retry = True
            elif code in (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION):
                self._abortable(request, CommitFailedError(
                    "Transaction offset commit failed: the consumer group has rebalanced "
                    "and this member is no longer part of it"))
                return
            elif code in (FENCED_INSTANCE_ID, GROUP_AUTHORIZATION_FAILED,
                          TRANSACTION_ABORTABLE):
                self._abortable(request, for_code(code)())
                return
            elif code in (INVALID_PRODUCER_EPOCH, PRODUCER_FENCED):
                self._fenced(request)
                return
            else:
                self._fatal(request, code)
                return
        if retry or request.pending_offsets:
            request.fields["topics"] = _offsets_by_topic(request.pending_offsets)
            self._requeue(request, now_ms)
        else:
            self._finish(request.result)

    def handle_end_txn(self, request: TxnRequest, error_code: int, now_ms: int) -> None:
        self._done_in_flight(request)
        if error_code == NONE:
            self._complete_transaction(request.result)
        elif error_code in _COORDINATOR_MOVED:
            self._coordinator_moved(request, now_ms)
        elif error_code in (COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS):
            self._requeue(request, now_ms)
        elif error_code in (INVALID_PRODUCER_EPOCH, PRODUCER_FENCED):
            self._fenced(request)
        elif error_code in (UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_ID_MAPPING):
            self._abortable_error_if_possible(for_code(error_code)())
            self._finish(request.result, self.last_error)
        elif error_code == TRANSACTION_ABORTABLE:
            self._abortable(request, for_code(error_code)())
        else:
            self._fatal(request, error_code)

    # --- helpers --------------------------------------------------------------------------

    def _complete_transaction(self, result: TransactionalRequestResult | None) -> None:
        if self.has_fatal_error:
            self._finish(result, self.last_error)
            return
        self.transaction_started = False
        self.partitions_in_transaction.clear()
        self.pending_partitions.clear()
        self.new_partitions.clear()
        if self.idempotence.epoch_bump_required:
            # KIP-360: after the abort, bump the epoch through the coordinator
            self._transition(S.INITIALIZING, from_application=False)
            self._enqueue(self._init_producer_id_request(result, bump=True))
            return
        self._transition(S.READY, from_application=False)
        self._finish(result)

    def _init_producer_id_request(self, result: TransactionalRequestResult | None, *,
                                  bump: bool) -> TxnRequest:
        pid_epoch = self.idempotence.producer_id_and_epoch
        return TxnRequest(
            "InitProducerId", "transaction", self.transactional_id,
            Priority.EPOCH_BUMP if bump else Priority.INIT_PRODUCER_ID,
            {"transactional_id": self.transactional_id,
             "transaction_timeout_ms": self.transaction_timeout_ms,
             # KIP-360: the current id and epoch let the coordinator bump rather than fence
             "producer_id": pid_epoch.producer_id if bump else -1,
             "producer_epoch": pid_epoch.epoch if bump else -1},
            result=result, is_epoch_bump=bump)

    def _add_partitions_request(self) -> TxnRequest:
        partitions = sorted(self.new_partitions)
        self.pending_partitions |= self.new_partitions
        self.new_partitions = set()
        topics: dict[str, list[int]] = {}
        for tp in partitions:
            topics.setdefault(tp.topic, []).append(tp.partition)
        pid_epoch = self.idempotence.producer_id_and_epoch
        return TxnRequest(
            "AddPartitionsToTxn", "transaction", self.transactional_id,
            Priority.ADD_PARTITIONS_OR_OFFSETS,
            {"transactional_id": self.transactional_id, "producer_id": pid_epoch.producer_id,
             "producer_epoch": pid_epoch.epoch, "topics": topics,
             "_partitions": partitions})

    def _txn_offset_commit_request(self, add_offsets: TxnRequest,
                                   metadata: ConsumerGroupMetadata) -> TxnRequest:
        pid_epoch = self.idempotence.producer_id_and_epoch
        return TxnRequest(
            "TxnOffsetCommit", "group", metadata.group_id, Priority.ADD_PARTITIONS_OR_OFFSETS,
            {"transactional_id": self.transactional_id, "group_id": metadata.group_id,
             "producer_id": pid_epoch.producer_id, "producer_epoch": pid_epoch.epoch,
             "generation_id": metadata.generation_id, "member_id": metadata.member_id,
             "group_instance_id": metadata.group_instance_id,
             "topics": _offsets_by_topic(add_offsets.pending_offsets)},
            result=add_offsets.result, pending_offsets=dict(add_offsets.pending_offsets))

    def _lookup_coordinator(self, kind: str, key: str) -> None:
        for _, _, queued in self._queue:
            if queued.api == "FindCoordinator" and queued.fields["key_type_name"] == kind:
                return
        self._enqueue(TxnRequest(
            "FindCoordinator", kind, key, Priority.FIND_COORDINATOR,
            {"key": key, "key_type": 1 if kind == "transaction" else 0,
             "key_type_name": kind}))

    def _coordinator_moved(self, request: TxnRequest, now_ms: int) -> None:
        self.coordinators[request.coordinator] = None
        self._lookup_coordinator(request.coordinator, request.coordinator_key)
        self._requeue(request, now_ms, backoff=False)

    def _requeue(self, request: TxnRequest, now_ms: int, *, backoff: bool = True,
                 backoff_ms: int | None = None) -> None:
        request.attempts += 1
        if backoff_ms is None:
            backoff_ms = self.retry_backoff_ms if backoff else 0
        request.not_before_ms = now_ms + backoff_ms
        self._enqueue(request)

    def _enqueue(self, request: TxnRequest) -> None:
        heapq.heappush(self._queue, (int(request.priority), next(self._counter), request))

    def _done_in_flight(self, request: TxnRequest) -> None:
        if self.in_flight is request:
            self.in_flight = None

    def _finish(self, result: TransactionalRequestResult | None,
                error: BaseException | None = None) -> None:
        if result is not None:
            result.done(error)

    def _fenced(self, request: TxnRequest) -> None:
        # On coordinator requests INVALID_PRODUCER_EPOCH means a newer producer took the
        # transactional id: fenced, for good.
        exc = ProducerFencedError()
        self.transition_to_fatal_error(exc)
        self._finish(request.result, exc)

    def _fatal(self, request: TxnRequest, error_code: int) -> None:
        exc = for_code(error_code)(f"unexpected error in {request.api} response")
        self.transition_to_fatal_error(exc)
        self._finish(request.result, exc)

    def _abortable(self, request: TxnRequest, exc: BaseException) -> None:
        self.transition_to_abortable_error(exc)
        self._finish(request.result, exc)

    def _fail_queued(self, exc: BaseException) -> None:
        queued, self._queue = self._queue, []
        for _, _, request in queued:
            self._finish(request.result, exc)

    def queued_requests(self) -> Iterable[TxnRequest]:
        return (request for _, _, request in sorted(self._queue))


def _offsets_by_topic(
        offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> dict[str, list[tuple[int, int, str]]]:
    topics: dict[str, list[tuple[int, int, str]]] = {}
    for tp in sorted(offsets):
        om = offsets[tp]
        topics.setdefault(tp.topic, []).append((tp.partition, om.offset, om.metadata))
    return topics
