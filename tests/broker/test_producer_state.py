"""Idempotence and transaction rules of a partition's producer state."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streamclient.broker.log.batches import BatchHeader
from streamclient.broker.log.results import AppendError, Err
from streamclient.broker.producer_state import (
    INT32_MAX,
    ProducerStateManager,
    in_sequence,
    last_sequence,
)

PID = 1000


def header(seq: int, count: int = 1, *, epoch: int = 0, pid: int = PID,
           transactional: bool = False, ts: int = 1) -> BatchHeader:
    return BatchHeader(
        base_offset=0, batch_length=0, partition_leader_epoch=0, magic=2, crc=0,
        attributes=0x10 if transactional else 0, last_offset_delta=count - 1,
        first_timestamp=ts, max_timestamp=ts, producer_id=pid, producer_epoch=epoch,
        base_sequence=seq, record_count=count)


class Log:
    """Drives a ProducerStateManager the way PartitionLog does: check, then record."""

    def __init__(self) -> None:
        self.state = ProducerStateManager()
        self.end = 0

    def append(self, h: BatchHeader, origin: str = "client") -> tuple[int, bool]:
        dup = self.state.check_batch(h, origin=origin)
        if dup is not None:
            return dup.first_offset, True
        first = self.end
        self.end += h.last_offset_delta + 1
        self.state.on_append(h, first, self.end - 1)
        return first, False


def error_of(log: Log, h: BatchHeader) -> Err:
    with pytest.raises(AppendError) as info:
        log.append(h)
    return info.value.error_code


def test_in_order_sequences_are_accepted_and_offsets_assigned() -> None:
    log = Log()
    assert log.append(header(0, 3)) == (0, False)
    assert log.append(header(3, 2)) == (3, False)
    assert log.state.producers[PID].last_seq == 4


@pytest.mark.parametrize("retry", range(5))
def test_duplicate_among_last_five_returns_original_offset(retry: int) -> None:
    log = Log()
    offsets = [log.append(header(i * 2, 2))[0] for i in range(5)]
    assert log.append(header(retry * 2, 2)) == (offsets[retry], True)
    assert log.end == 10  # nothing was written for the duplicate


def test_batch_older_than_the_last_five_is_out_of_order() -> None:
    log = Log()
    for i in range(6):
        log.append(header(i))
    assert error_of(log, header(0)) == Err.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.append(header(1)) == (1, True)


def test_gap_in_sequence_is_out_of_order() -> None:
    log = Log()
    log.append(header(0, 2))
    assert error_of(log, header(3)) == Err.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_partial_overlap_is_not_a_duplicate() -> None:
    log = Log()
    log.append(header(0, 3))
    assert error_of(log, header(1, 2)) == Err.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_older_epoch_is_rejected() -> None:
    log = Log()
    log.append(header(0, epoch=3))
    assert error_of(log, header(1, epoch=2)) == Err.INVALID_PRODUCER_EPOCH


def test_new_epoch_must_start_at_zero() -> None:
    log = Log()
    log.append(header(0, epoch=0))
    assert error_of(log, header(5, epoch=1)) == Err.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.append(header(0, epoch=1)) == (1, False)
    # sequences of the old epoch are forgotten: a retry of it is now a stale epoch
    assert error_of(log, header(0, epoch=0)) == Err.INVALID_PRODUCER_EPOCH


def test_unknown_producer_is_accepted_at_any_sequence() -> None:
    # Kafka >= 2.5 (KIP-360): no state for the producer -> no sequence check
    log = Log()
    assert log.append(header(42)) == (0, False)
    assert error_of(log, header(44)) == Err.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.append(header(43)) == (1, False)


def test_sequence_wraps_from_int32_max_to_zero() -> None:
    assert last_sequence(INT32_MAX - 1, 3) == 1
    assert in_sequence(INT32_MAX, 0)
    assert not in_sequence(INT32_MAX, 1)
    log = Log()
    log.append(header(INT32_MAX - 1, 2))
    assert log.state.producers[PID].last_seq == INT32_MAX
    assert log.append(header(0, 2)) == (2, False)
    log2 = Log()
    log2.append(header(INT32_MAX - 1, 4))  # straddles the wrap: seqs max-1, max, 0, 1
    assert log2.state.producers[PID].last_seq == 1
    assert log2.append(header(2)) == (4, False)
    assert log2.append(header(INT32_MAX - 1, 4)) == (0, True)


def test_coordinator_writes_skip_sequence_checks() -> None:
    log = Log()
    log.append(header(0, transactional=True), origin="coordinator")
    log.append(header(-1, transactional=True), origin="coordinator")
    assert log.end == 2


def test_non_transactional_write_during_open_transaction() -> None:
    log = Log()
    log.append(header(0, transactional=True))
    assert error_of(log, header(1)) == Err.INVALID_TXN_STATE


def test_transaction_tracking_and_markers() -> None:
    log = Log()
    log.append(header(0, 2))  # idempotent, not transactional: offsets 0-1
    log.append(header(0, 3, pid=7, transactional=True))  # offsets 2-4
    log.append(header(0, 1, pid=8, transactional=True))  # offset 5
    assert log.state.first_unstable_offset() == 2
    done = log.state.on_marker(7, 0, coordinator_epoch=1, commit=False, marker_offset=6)
    assert done is not None and done.aborted and (done.first_offset, done.last_offset) == (2, 6)
    assert log.state.first_unstable_offset() == 5
    done = log.state.on_marker(8, 0, coordinator_epoch=1, commit=True, marker_offset=7)
    assert done is not None and not done.aborted
    assert log.state.first_unstable_offset() is None
    # a marker for a producer without an open transaction completes nothing
    assert log.state.on_marker(8, 0, coordinator_epoch=1, commit=True, marker_offset=8) is None


def test_marker_epoch_and_coordinator_fencing() -> None:
    state = ProducerStateManager()
    state.on_append(header(0, epoch=5, transactional=True), 0, 0)
    with pytest.raises(AppendError) as info:
        state.check_marker(PID, 4, 0)
    assert info.value.error_code == Err.INVALID_PRODUCER_EPOCH
    state.on_marker(PID, 5, coordinator_epoch=3, commit=True, marker_offset=1)
    with pytest.raises(AppendError) as info:
        state.check_marker(PID, 5, 2)
    assert info.value.error_code == Err.TRANSACTION_COORDINATOR_FENCED
    state.check_marker(PID, 6, 3)


def test_marker_with_bumped_epoch_resets_sequences() -> None:
    # transactions v2 (KIP-890) bumps the epoch with every marker
    log = Log()
    log.append(header(0, 2, transactional=True))
    log.state.on_marker(PID, 1, coordinator_epoch=0, commit=True, marker_offset=2)
    log.end = 3
    assert error_of(log, header(2, epoch=1, transactional=True)) == Err.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.append(header(0, epoch=1, transactional=True)) == (3, False)


def test_replay_rebuilds_the_same_state() -> None:
    log = Log()
    log.append(header(0, 2))
    log.append(header(0, 1, pid=9, transactional=True))
    log.append(header(2, 3))
    rebuilt = ProducerStateManager()
    rebuilt.replay_batch(header(0, 2), 0, 1)
    rebuilt.replay_batch(header(0, 1, pid=9, transactional=True), 2, 2)
    rebuilt.replay_batch(header(2, 3), 3, 5)
    assert rebuilt.ongoing_transactions() == log.state.ongoing_transactions() == {9: 2}
    for pid in (PID, 9):
        a, b = rebuilt.producers[pid], log.state.producers[pid]
        assert list(a.batches) == list(b.batches) and a.producer_epoch == b.producer_epoch


def test_truncate_before_forgets_producers_whose_data_is_gone() -> None:
    log = Log()
    log.append(header(0, 2))
    log.state.truncate_before(2)
    assert PID not in log.state.producers
    assert log.append(header(17)) == (2, False)


def test_producer_state_can_be_the_first_broker_module_imported() -> None:
    # producer_state -> log.results runs log/__init__ -> log.partition, which must not
    # need producer_state's names while producer_state is still being built
    result = subprocess.run(
        [sys.executable, "-c", "import streamclient.broker.producer_state"],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
