"""The embedded broker's unclean-election fault (``broker.faults.unclean_election``) and the
log truncation under it, without sockets: what a consumer's OffsetForLeaderEpoch sees."""

from __future__ import annotations

import pytest

from streamclient.broker.config import BrokerConfig
from streamclient.broker.faults import unclean_election
from streamclient.broker.log import READ_COMMITTED, AppendError, Err, LogManager, PartitionLog
from streamclient.broker.state import ClusterState, ManualClock
from streamclient.errors import IllegalArgumentError
from streamclient.protocol.records import RecordBatchBuilder, iter_batches

NOW = 1_700_000_000_000


def make_state(nodes: int = 3) -> ClusterState:
    state = ClusterState(BrokerConfig(), clock=ManualClock(1_000))
    state.logs = LogManager(state)
    for i in range(nodes):
        state.add_node(i, "127.0.0.1", 9000 + i)
    return state


def batch(n: int = 1, *, pid: int = -1, epoch: int = -1, seq: int = -1,
          transactional: bool = False) -> bytes:
    builder = RecordBatchBuilder(is_transactional=transactional, producer_id=pid,
                                 producer_epoch=epoch, base_sequence=seq, batch_size=1 << 20)
    for i in range(n):
        assert builder.append(NOW, b"k%d" % i, b"v%d" % i, []) is not None
    if pid >= 0:
        builder.set_producer_state(pid, epoch, seq)
    return builder.build()


def log_of(state: ClusterState, topic: str = "t") -> PartitionLog:
    log = state.logs.partition(topic, 0)
    assert log is not None
    return log


def offsets_and_epochs(log: PartitionLog) -> list[tuple[int, int]]:
    data = log.read(log.log_start_offset, 1 << 20).records
    return [(r.offset, b.partition_leader_epoch) for b in iter_batches(data) for r in b]


def test_election_truncates_and_bumps_the_epoch() -> None:
    state = make_state()
    part = state.create_topic("t", 1, 3).partitions[0]
    log = log_of(state)
    for _ in range(5):
        log.append(batch(2), now_ms=NOW)  # offsets 0..9 in epoch 0
    old_leader = part.leader
    new_leader = next(r for r in part.replicas if r != old_leader)

    moved = unclean_election(state, "t", 0, to_node=new_leader, truncate_to=6)

    assert moved.leader == new_leader and moved.leader_epoch == 1
    assert (log.log_end_offset, log.high_watermark) == (6, 6)
    assert log.epochs.entries() == [(0, 0), (1, 6)]
    # what a consumer at offset 10 of epoch 0 asks: epoch 0 now ends at 6
    assert log.epochs.end_offset_for(0, log.log_end_offset) == (0, 6)
    assert log.epochs.end_offset_for(1, log.log_end_offset) == (1, 6)
    # new records go where the lost ones were, stamped with the new epoch
    log.append(batch(1), now_ms=NOW)
    assert offsets_and_epochs(log) == [(o, 0) for o in range(6)] + [(6, 1)]
    assert log.high_watermark == 7


def test_a_plain_move_keeps_every_record() -> None:
    state = make_state()
    part = state.create_topic("t", 1, 3).partitions[0]
    log = log_of(state)
    log.append(batch(4), now_ms=NOW)
    state.move_leader("t", 0, next(r for r in part.replicas if r != part.leader))
    assert log.epochs.end_offset_for(0, log.log_end_offset) == (0, 4)


def test_truncation_rebuilds_producer_state() -> None:
    state = make_state()
    part = state.create_topic("t", 1, 3).partitions[0]
    log = log_of(state)
    log.append(batch(2, pid=7, epoch=0, seq=0), now_ms=NOW)  # 0..1, seq 0..1
    log.append(batch(2, pid=7, epoch=0, seq=2), now_ms=NOW)  # 2..3, seq 2..3
    unclean_election(state, "t", 0, to_node=next(r for r in part.replicas if r != part.leader),
                     truncate_to=2)
    # the lost batch is not a duplicate any more: its retry is written again, at 2
    result = log.append(batch(2, pid=7, epoch=0, seq=2), now_ms=NOW)
    assert (result.base_offset, result.duplicate) == (2, False)
    # and a sequence that skips ahead of what is left is refused
    with pytest.raises(AppendError) as err:
        log.append(batch(1, pid=7, epoch=0, seq=9), now_ms=NOW)
    assert err.value.error_code == Err.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_truncation_reopens_a_transaction_whose_marker_was_lost() -> None:
    state = make_state()
    part = state.create_topic("t", 1, 3).partitions[0]
    log = log_of(state)
    log.append(batch(1, pid=3, epoch=0, seq=0, transactional=True), now_ms=NOW)  # 0
    log.append_control(3, 0, commit=False, coordinator_epoch=0, now_ms=NOW)  # 1: ABORT
    assert log.last_stable_offset == 2
    unclean_election(state, "t", 0, to_node=next(r for r in part.replicas if r != part.leader),
                     truncate_to=1)
    # the abort marker is gone, so the transaction is open again and holds the LSO back
    assert log.last_stable_offset == 0
    assert log.read(0, 1 << 20, READ_COMMITTED).records == b""
    assert log.aborted_transactions(0, 10) == []


def test_bad_elections_change_nothing() -> None:
    state = make_state()
    part = state.create_topic("t", 1, 3).partitions[0]
    log = log_of(state)
    log.append(batch(3), now_ms=NOW)  # one batch: 0..2
    other = next(r for r in part.replicas if r != part.leader)
    with pytest.raises(IllegalArgumentError, match="already leads"):
        unclean_election(state, "t", 0, to_node=part.leader, truncate_to=0)
    with pytest.raises(IllegalArgumentError, match="inside the batch"):
        unclean_election(state, "t", 0, to_node=other, truncate_to=1)
    with pytest.raises(IllegalArgumentError, match=r"holds 0\.\.3"):
        unclean_election(state, "t", 0, to_node=other, truncate_to=4)
    with pytest.raises(IllegalArgumentError, match="does not exist"):
        unclean_election(state, "nope", 0, to_node=other, truncate_to=0)
    state.set_node_alive(other, False)
    with pytest.raises(IllegalArgumentError, match="not an alive replica"):
        unclean_election(state, "t", 0, to_node=other, truncate_to=0)
    assert (log.log_end_offset, part.leader_epoch) == (3, 0)
    assert log.epochs.entries()[0] == (0, 0)


def test_truncate_to_the_log_start_empties_the_log() -> None:
    state = make_state()
    part = state.create_topic("t", 1, 3).partitions[0]
    log = log_of(state)
    log.append(batch(2), now_ms=NOW)
    unclean_election(state, "t", 0, to_node=next(r for r in part.replicas if r != part.leader),
                     truncate_to=0)
    assert (log.log_end_offset, log.high_watermark) == (0, 0)
    assert log.epochs.entries() == [(1, 0)]
    # an epoch the new leader never had is answered with the next epoch's start
    assert log.epochs.end_offset_for(0, 0) == (0, 0)
