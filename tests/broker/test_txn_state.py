"""The sans-IO transaction state machine: every transition, error and fence."""

from __future__ import annotations

import pytest

from streamclient.broker.groups.error_code import Code
from streamclient.broker.txn.transaction import (
    MAX_EPOCH,
    TransactionConfig,
    TransactionManager,
    TxnState,
)

TID = "tx-1"
TP0 = ("t", 0)
TP1 = ("t", 1)


def _init(m: TransactionManager, now: int = 0, timeout: int = 60_000) -> tuple[int, int]:
    r = m.init_producer_id(TID, timeout, now)
    assert r.error is Code.NONE
    return r.producer_id, r.producer_epoch


def _complete(m: TransactionManager, commit: bool, now: int = 0) -> None:
    md = m.get(TID)
    assert md is not None
    pid, epoch = md.producer_id, md.producer_epoch
    code, plan = m.end_txn(TID, pid, epoch, commit, now)
    assert code is Code.NONE and plan is not None
    assert m.markers_written(TID, plan.partitions, now)


def test_idempotent_producer_gets_fresh_ids() -> None:
    m = TransactionManager(first_producer_id=7)
    a = m.init_producer_id(None, 0, 0)
    b = m.init_producer_id(None, 0, 0, expected=(7, 0))
    assert (a.producer_id, a.producer_epoch) == (7, 0)
    assert (b.producer_id, b.producer_epoch) == (8, 0)


def test_transactional_init_bumps_epoch_each_time() -> None:
    m = TransactionManager()
    pid, e0 = _init(m)
    assert e0 == 0
    pid2, e1 = _init(m)
    assert (pid2, e1) == (pid, 1)
    # the old epoch is fenced
    assert m.add_partitions(TID, pid, 0, [TP0], 0) is Code.PRODUCER_FENCED


@pytest.mark.parametrize("timeout", [0, 900_001])
def test_invalid_transaction_timeout(timeout: int) -> None:
    m = TransactionManager(TransactionConfig(max_timeout_ms=900_000))
    assert m.init_producer_id(TID, timeout, 0).error is Code.INVALID_TRANSACTION_TIMEOUT


def test_empty_transactional_id_is_invalid() -> None:
    assert TransactionManager().init_producer_id("", 1000, 0).error is Code.INVALID_REQUEST


def test_commit_cycle() -> None:
    m = TransactionManager()
    pid, epoch = _init(m)
    assert m.get(TID).state is TxnState.EMPTY  # type: ignore[union-attr]
    assert m.add_partitions(TID, pid, epoch, [TP0], 10) is Code.NONE
    assert m.is_partition_in_transaction(pid, epoch, TP0)
    assert not m.is_partition_in_transaction(pid, epoch, TP1)
    assert not m.is_partition_in_transaction(pid, epoch - 1, TP0)
    assert m.add_partitions(TID, pid, epoch, [TP1], 20) is Code.NONE
    md = m.get(TID)
    assert md is not None
    assert md.state is TxnState.ONGOING and md.partitions == {TP0, TP1}
    assert md.start_timestamp_ms == 10
    code, plan = m.end_txn(TID, pid, epoch, True, 30)
    assert code is Code.NONE and plan is not None
    assert plan.commit and plan.partitions == {TP0, TP1}
    assert (plan.producer_id, plan.producer_epoch) == (pid, epoch)
    assert md.state is TxnState.PREPARE_COMMIT
    # while markers are outstanding, other requests must wait
    assert m.add_partitions(TID, pid, epoch, [TP0], 31) is Code.CONCURRENT_TRANSACTIONS
    assert m.end_txn(TID, pid, epoch, True, 31) == (Code.CONCURRENT_TRANSACTIONS, None)
    assert m.end_txn(TID, pid, epoch, False, 31) == (Code.INVALID_TXN_STATE, None)
    assert m.init_producer_id(TID, 60_000, 31).error is Code.CONCURRENT_TRANSACTIONS
    assert [p.transactional_id for p in m.pending_plans()] == [TID]
    assert not m.markers_written(TID, [TP0], 32)
    assert m.pending_plans()[0].partitions == {TP1}
    assert m.markers_written(TID, [TP1], 33)
    assert md.state is TxnState.COMPLETE_COMMIT and md.partitions == set()
    assert not m.is_partition_in_transaction(pid, epoch, TP0)
    # a retried commit is fine, an abort of a committed transaction is not
    assert m.end_txn(TID, pid, epoch, True, 40) == (Code.NONE, None)
    assert m.end_txn(TID, pid, epoch, False, 40) == (Code.INVALID_TXN_STATE, None)
    # the next transaction starts from CompleteCommit
    assert m.add_partitions(TID, pid, epoch, [TP1], 50) is Code.NONE
    assert md.partitions == {TP1} and md.start_timestamp_ms == 50


def test_abort_cycle() -> None:
    m = TransactionManager()
    pid, epoch = _init(m)
    m.add_partitions(TID, pid, epoch, [TP0], 0)
    code, plan = m.end_txn(TID, pid, epoch, False, 1)
    assert code is Code.NONE and plan is not None and not plan.commit
    assert m.end_txn(TID, pid, epoch, False, 1) == (Code.CONCURRENT_TRANSACTIONS, None)
    assert m.end_txn(TID, pid, epoch, True, 1) == (Code.INVALID_TXN_STATE, None)
    m.markers_written(TID, plan.partitions, 2)
    assert m.get(TID).state is TxnState.COMPLETE_ABORT  # type: ignore[union-attr]
    assert m.end_txn(TID, pid, epoch, False, 3) == (Code.NONE, None)
    assert m.end_txn(TID, pid, epoch, True, 3) == (Code.INVALID_TXN_STATE, None)


def test_end_txn_in_empty_state_is_invalid() -> None:
    m = TransactionManager()
    pid, epoch = _init(m)
    assert m.end_txn(TID, pid, epoch, True, 0) == (Code.INVALID_TXN_STATE, None)


def test_producer_id_mapping_errors() -> None:
    m = TransactionManager()
    pid, epoch = _init(m)
    assert m.add_partitions("other", pid, epoch, [TP0], 0) is Code.INVALID_PRODUCER_ID_MAPPING
    assert m.add_partitions(TID, pid + 1, epoch, [TP0], 0) is Code.INVALID_PRODUCER_ID_MAPPING
    assert m.end_txn(TID, pid + 1, epoch, True, 0)[0] is Code.INVALID_PRODUCER_ID_MAPPING
    assert m.end_txn(TID, pid, epoch + 1, True, 0)[0] is Code.PRODUCER_FENCED


def test_init_during_ongoing_aborts_with_fenced_epoch() -> None:
    m = TransactionManager()
    pid, epoch = _init(m)
    m.add_partitions(TID, pid, epoch, [TP0], 0)
    r = m.init_producer_id(TID, 60_000, 5)
    assert r.error is Code.CONCURRENT_TRANSACTIONS and r.abort is not None
    # the markers carry the bumped epoch, which fences the old producer's writes
    assert not r.abort.commit and r.abort.producer_epoch == epoch + 1
    assert r.abort.partitions == {TP0}
    assert m.end_txn(TID, pid, epoch, True, 5)[0] is Code.PRODUCER_FENCED
    m.markers_written(TID, r.abort.partitions, 6)
    again = m.init_producer_id(TID, 60_000, 7)
    assert again.error is Code.NONE
    assert (again.producer_id, again.producer_epoch) == (pid, epoch + 2)


def test_kip360_resume_with_current_epoch() -> None:
    m = TransactionManager()
    pid, epoch = _init(m)
    r = m.init_producer_id(TID, 60_000, 1, expected=(pid, epoch))
    assert (r.error, r.producer_id, r.producer_epoch) == (Code.NONE, pid, epoch + 1)
    # the answer was lost and the producer retries with the same expectation
    r2 = m.init_producer_id(TID, 60_000, 2, expected=(pid, epoch))
    assert (r2.error, r2.producer_epoch) == (Code.NONE, epoch + 1)
    # an epoch that is neither current nor the previous one belongs to a zombie
    r3 = m.init_producer_id(TID, 60_000, 3, expected=(pid, epoch + 7))
    assert r3.error is Code.PRODUCER_FENCED
    r4 = m.init_producer_id(TID, 60_000, 3, expected=(pid + 50, 0))
    assert r4.error is Code.PRODUCER_FENCED


def test_epoch_exhaustion_moves_to_new_producer_id() -> None:
    m = TransactionManager()
    pid, _ = _init(m)
    md = m.get(TID)
    assert md is not None
    md.producer_epoch = MAX_EPOCH - 1
    r = m.init_producer_id(TID, 60_000, 1)
    assert r.error is Code.NONE and r.producer_id != pid and r.producer_epoch == 0
    assert md.last_producer_id == pid
    # a retry from the producer that exhausted its epochs gets the same new id
    r2 = m.init_producer_id(TID, 60_000, 2, expected=(pid, MAX_EPOCH - 1))
    assert (r2.error, r2.producer_id, r2.producer_epoch) == (Code.NONE, r.producer_id, 0)


def test_timeout_aborts_and_fences() -> None:
    m = TransactionManager()
    pid, epoch = _init(m, timeout=1_000)
    m.add_partitions(TID, pid, epoch, [TP0, TP1], 100)
    assert m.expire(1_099) == []
    plans = m.expire(1_100)
    assert len(plans) == 1
    plan = plans[0]
    assert not plan.commit and plan.producer_epoch == epoch + 1
    assert plan.partitions == {TP0, TP1}
    assert m.get(TID).state is TxnState.PREPARE_ABORT  # type: ignore[union-attr]
    assert m.markers_written(TID, plan.partitions, 1_101)
    # the producer that timed out is a zombie now
    assert m.add_partitions(TID, pid, epoch, [TP0], 1_200) is Code.PRODUCER_FENCED
    assert m.end_txn(TID, pid, epoch, True, 1_200)[0] is Code.PRODUCER_FENCED
    # a completed transaction never times out
    assert m.expire(10_000_000) == []


def test_add_is_idempotent_and_does_not_restart_timer() -> None:
    m = TransactionManager()
    pid, epoch = _init(m)
    m.add_partitions(TID, pid, epoch, [TP0], 5)
    m.changed.clear()
    assert m.add_partitions(TID, pid, epoch, [TP0], 9) is Code.NONE
    assert m.changed == set()
    assert m.get(TID).start_timestamp_ms == 5  # type: ignore[union-attr]


def test_state_names() -> None:
    assert TxnState.PREPARE_COMMIT.display_name == "PrepareCommit"
    assert TxnState.COMPLETE_ABORT.display_name == "CompleteAbort"
    assert TxnState.EMPTY.display_name == "Empty"


def test_restore_reserves_producer_ids() -> None:
    m = TransactionManager(first_producer_id=1)
    pid, epoch = _init(m)
    m.add_partitions(TID, pid, epoch, [TP0], 0)
    m.end_txn(TID, pid, epoch, True, 1)
    md = m.get(TID)
    assert md is not None
    fresh = TransactionManager(first_producer_id=1)
    fresh.restore(md, TID)
    # a PrepareCommit reloaded from the log still owes its markers
    assert fresh.pending_plans()[0].partitions == {TP0}
    assert fresh.init_producer_id(None, 0, 0).producer_id > pid
    fresh.restore(None, TID)
    assert fresh.get(TID) is None
