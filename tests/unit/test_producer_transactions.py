"""TransactionManager: the state machine table, the request flow, error classification."""

from __future__ import annotations

import itertools

import pytest

from streamclient.errors import (
    CommitFailedError,
    IllegalStateError,
    ProducerFenced,
    TopicAuthorizationFailedError,
)
from streamclient.producer.idempotence import IdempotenceState
from streamclient.producer.transactions import (
    VALID_SOURCES,
    ConsumerGroupMetadata,
    TransactionManager,
    TransactionState,
    TxnRequest,
    is_transition_valid,
)
from streamclient.structs import OffsetAndMetadata, TopicPartition

S = TransactionState
T0, T1 = TopicPartition("t", 0), TopicPartition("t", 1)

# Java's State.isTransitionValid, written out as (source, target) pairs
VALID = {
    (S.READY, S.UNINITIALIZED), (S.ABORTABLE_ERROR, S.UNINITIALIZED),
    (S.UNINITIALIZED, S.INITIALIZING), (S.ABORTING_TRANSACTION, S.INITIALIZING),
    (S.INITIALIZING, S.READY), (S.COMMITTING_TRANSACTION, S.READY),
    (S.ABORTING_TRANSACTION, S.READY),
    (S.READY, S.IN_TRANSACTION),
    (S.IN_TRANSACTION, S.COMMITTING_TRANSACTION),
    (S.IN_TRANSACTION, S.ABORTING_TRANSACTION), (S.ABORTABLE_ERROR, S.ABORTING_TRANSACTION),
    (S.IN_TRANSACTION, S.ABORTABLE_ERROR), (S.COMMITTING_TRANSACTION, S.ABORTABLE_ERROR),
    (S.ABORTABLE_ERROR, S.ABORTABLE_ERROR), (S.INITIALIZING, S.ABORTABLE_ERROR),
} | {(source, S.FATAL_ERROR) for source in S}


@pytest.mark.parametrize("source, target", list(itertools.product(S, S)),
                         ids=lambda s: s.name)
def test_transition_table(source: S, target: S) -> None:
    assert is_transition_valid(source, target) is ((source, target) in VALID)
    tm = manager()
    tm.state = source
    if (source, target) in VALID:
        tm._transition(target)
        assert tm.state is target
    else:
        with pytest.raises(IllegalStateError, match="invalid transition"):
            tm._transition(target)
        assert tm.state is source  # nothing changed
        tm._transition(target, from_application=False)
        assert tm.state is S.FATAL_ERROR  # the sender poisons instead of raising


def test_every_state_has_a_rule() -> None:
    assert set(VALID_SOURCES) == set(S)


def manager() -> TransactionManager:
    return TransactionManager("tx", 60000, IdempotenceState(), retry_backoff_ms=100)


def send(tm: TransactionManager, now: int = 0, incomplete: bool = False) -> TxnRequest:
    request = tm.next_request(now, incomplete)
    assert request is not None
    if request.api == "FindCoordinator":
        tm.handle_find_coordinator(request, 0, 7, now)
        request = tm.next_request(now, incomplete)
        assert request is not None
    return request


def ready_manager() -> TransactionManager:
    tm = manager()
    result = tm.initialize_transactions()
    request = send(tm)
    assert request.api == "InitProducerId" and request.fields["producer_id"] == -1
    assert request.fields["transaction_timeout_ms"] == 60000
    tm.handle_init_producer_id(request, 0, 5000, 0, 0)
    assert result.is_done and result.error is None and tm.state is S.READY
    assert tm.idempotence.producer_id_and_epoch == (5000, 0)
    return tm


def test_commit_flow_with_partitions() -> None:
    tm = ready_manager()
    with pytest.raises(IllegalStateError):
        tm.maybe_add_partition(T0)  # not in a transaction
    tm.begin_transaction()
    tm.maybe_add_partition(T0)
    tm.maybe_add_partition(T1)
    assert not tm.is_send_to_partition_allowed(T0)
    add = send(tm)
    assert add.api == "AddPartitionsToTxn" and add.fields["topics"] == {"t": [0, 1]}
    assert tm.next_request(0, False) is None  # one request in flight at a time
    tm.handle_add_partitions(add, {T0: 0, T1: 0}, 0)
    assert tm.is_send_to_partition_allowed(T0) and tm.transaction_started
    result = tm.begin_commit()
    assert tm.is_completing
    assert tm.next_request(0, has_incomplete_batches=True) is None  # EndTxn waits
    end = send(tm)
    assert end.api == "EndTxn" and end.fields["committed"] is True
    tm.handle_end_txn(end, 0, 0)
    assert result.is_done and result.error is None and tm.state is S.READY
    assert not tm.partitions_in_transaction


def test_empty_transaction_completes_locally() -> None:
    tm = ready_manager()
    tm.begin_transaction()
    result = tm.begin_commit()
    assert tm.next_request(0, False) is None
    assert result.is_done and tm.state is S.READY


def test_concurrent_transactions_retries_after_20_ms() -> None:
    tm = ready_manager()
    tm.begin_transaction()
    tm.maybe_add_partition(T0)
    add = send(tm)
    tm.handle_add_partitions(add, {T0: 51}, 1000)
    assert tm.next_request(1019, False) is None
    again = tm.next_request(1020, False)
    assert again is add and again.fields["topics"] == {"t": [0]}


def test_coordinator_moved_is_looked_up_again() -> None:
    tm = ready_manager()
    tm.begin_transaction()
    tm.maybe_add_partition(T0)
    add = send(tm)
    tm.handle_add_partitions(add, {T0: 16}, 0)  # NOT_COORDINATOR
    find = tm.next_request(0, False)
    assert find is not None and find.api == "FindCoordinator" and find.fields["key"] == "tx"
    tm.handle_find_coordinator(find, 0, 3, 0)
    assert tm.next_request(0, False) is add and tm.coordinators["transaction"] == 3


def test_send_offsets_with_group_metadata() -> None:
    tm = ready_manager()
    with pytest.raises(IllegalStateError):
        tm.send_offsets_to_transaction({T0: 5}, "g")
    tm.begin_transaction()
    meta = ConsumerGroupMetadata("g", generation_id=4, member_id="m-1", group_instance_id="i")
    result = tm.send_offsets_to_transaction({T0: OffsetAndMetadata(10, "x"), T1: 3}, meta)
    add = send(tm)
    assert add.api == "AddOffsetsToTxn" and add.fields["group_id"] == "g"
    tm.handle_add_offsets(add, 0, 0)
    commit = tm.next_request(0, False)
    assert commit is not None and commit.api == "FindCoordinator"
    tm.handle_find_coordinator(commit, 0, 9, 0)
    commit = tm.next_request(0, False)
    assert commit is not None and commit.api == "TxnOffsetCommit"
    assert commit.coordinator == "group" and tm.coordinator_for(commit) == 9
    assert (commit.fields["generation_id"], commit.fields["member_id"],
            commit.fields["group_instance_id"]) == (4, "m-1", "i")
    assert commit.fields["topics"] == {"t": [(0, 10, "x"), (1, 3, "")]}
    tm.handle_txn_offset_commit(commit, {T0: 0, T1: 14}, 0)  # T1 retried
    assert not result.is_done
    retry = tm.next_request(200, False)
    assert retry is commit and commit.fields["topics"] == {"t": [(1, 3, "")]}
    tm.handle_txn_offset_commit(retry, {T1: 0}, 200)
    assert result.is_done and result.error is None


def test_txn_offset_commit_generation_error_is_abortable() -> None:
    tm = ready_manager()
    tm.begin_transaction()
    result = tm.send_offsets_to_transaction({T0: 1}, ConsumerGroupMetadata("g"))
    add = send(tm)
    tm.handle_add_offsets(add, 0, 0)
    commit = send(tm)
    tm.handle_txn_offset_commit(commit, {T0: 22}, 0)  # ILLEGAL_GENERATION
    assert isinstance(result.error, CommitFailedError) and tm.has_abortable_error
    with pytest.raises(CommitFailedError):
        tm.begin_commit()
    with pytest.raises(CommitFailedError):
        tm.maybe_add_partition(T0)
    abort = tm.begin_abort()
    end = send(tm)
    assert end.api == "EndTxn" and end.fields["committed"] is False
    tm.handle_end_txn(end, 0, 0)
    assert abort.is_done and tm.state is S.READY


@pytest.mark.parametrize("api", ["InitProducerId", "AddPartitionsToTxn", "EndTxn"])
@pytest.mark.parametrize("code", [47, 90])  # INVALID_PRODUCER_EPOCH, PRODUCER_FENCED
def test_fenced_on_coordinator_requests_is_fatal(api: str, code: int) -> None:
    tm = manager() if api == "InitProducerId" else ready_manager()
    if api == "InitProducerId":
        result = tm.initialize_transactions()
        request = send(tm)
        tm.handle_init_producer_id(request, code, -1, -1, 0)
    elif api == "AddPartitionsToTxn":
        tm.begin_transaction()
        tm.maybe_add_partition(T0)
        request = send(tm)
        tm.handle_add_partitions(request, {T0: code}, 0)
        result = None
    else:
        tm.begin_transaction()
        tm.maybe_add_partition(T0)
        tm.handle_add_partitions(send(tm), {T0: 0}, 0)
        result = tm.begin_commit()
        tm.handle_end_txn(send(tm), code, 0)
    assert tm.state is S.FATAL_ERROR and isinstance(tm.last_error, ProducerFenced)
    if result is not None:
        assert isinstance(result.error, ProducerFenced)
    with pytest.raises(ProducerFenced):
        tm.begin_abort()


def test_topic_authorization_is_abortable() -> None:
    tm = ready_manager()
    tm.begin_transaction()
    tm.maybe_add_partition(T0)
    tm.handle_add_partitions(send(tm), {T0: 29}, 0)
    assert tm.has_abortable_error
    assert isinstance(tm.last_error, TopicAuthorizationFailedError)


@pytest.mark.parametrize("started", [True, False])
def test_abort_after_abortable_error_bumps_epoch(started: bool) -> None:
    tm = ready_manager()
    tm.begin_transaction()
    if started:
        tm.maybe_add_partition(T1)
        tm.handle_add_partitions(send(tm), {T1: 0}, 0)
    tm.maybe_add_partition(T0)
    tm.handle_add_partitions(send(tm), {T0: 59}, 0)  # UNKNOWN_PRODUCER_ID
    assert tm.has_abortable_error and tm.epoch_bump_required
    result = tm.begin_abort()
    if started:
        end = send(tm)
        assert end.api == "EndTxn"
        tm.handle_end_txn(end, 0, 0)
    else:
        assert tm.next_request(0, False) is not None  # EndTxn completed locally
    assert tm.state is S.INITIALIZING and not result.is_done
    bump = tm.in_flight if not started else send(tm)
    assert bump is not None
    assert bump.api == "InitProducerId" and bump.is_epoch_bump
    assert (bump.fields["producer_id"], bump.fields["producer_epoch"]) == (5000, 0)
    tm.handle_init_producer_id(bump, 0, 5000, 1, 0)
    assert result.is_done and tm.state is S.READY and not tm.epoch_bump_required
    assert tm.idempotence.producer_id_and_epoch == (5000, 1)


def test_invalid_application_calls() -> None:
    tm = manager()
    with pytest.raises(IllegalStateError):
        tm.begin_transaction()  # before initialize
    tm = ready_manager()
    with pytest.raises(IllegalStateError):
        tm.begin_commit()
    tm.begin_transaction()
    with pytest.raises(IllegalStateError):
        tm.begin_transaction()
    assert tm.state is S.IN_TRANSACTION


def test_retried_call_returns_pending_result() -> None:
    tm = ready_manager()
    tm.begin_transaction()
    tm.maybe_add_partition(T0)
    tm.handle_add_partitions(send(tm), {T0: 0}, 0)
    first = tm.begin_commit()
    assert tm.begin_commit() is first  # the same call after a timeout
    with pytest.raises(IllegalStateError, match="pending"):
        tm.begin_abort()
