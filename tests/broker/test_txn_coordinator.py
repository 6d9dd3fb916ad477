"""The transaction coordinator over a real ClusterState and in-memory logs (no sockets)."""

from __future__ import annotations

from streamclient.broker.config import BrokerConfig
from streamclient.broker.groups import GroupCoordinator
from streamclient.broker.groups.error_code import Code
from streamclient.broker.groups.offsets import OffsetAndMetadata
from streamclient.broker.log import LogManager
from streamclient.broker.state import ClusterState, ManualClock
from streamclient.broker.txn import TransactionCoordinator, TxnState
from streamclient.protocol.records.batch import RecordBatch
from streamclient.protocol.records.builder import RecordBatchBuilder

TID = "app-txn"


def make_state(nodes: int = 3) -> ClusterState:
    config = BrokerConfig(offsets_topic_num_partitions=5, transaction_state_log_num_partitions=3)
    state = ClusterState(config, clock=ManualClock(1_000))
    for i in range(nodes):
        state.add_node(i, "127.0.0.1", 9000 + i)
    state.logs = LogManager(state)
    state.groups = GroupCoordinator(state)
    state.txns = TransactionCoordinator(state)
    return state


def _produce(state, topic: str, partition: int, pid: int, epoch: int, seq: int) -> None:  # type: ignore[no-untyped-def]
    builder = RecordBatchBuilder(is_transactional=True, producer_id=pid, producer_epoch=epoch,
                                 base_sequence=seq)
    builder.append(state.clock.now_ms(), b"k", b"v", [])
    log = state.partition_log(topic, partition)
    log.append(builder.build(), origin="client", now_ms=state.clock.now_ms())


def _control_types(state, topic: str, partition: int) -> list[bool]:  # type: ignore[no-untyped-def]
    """For each control batch in the partition: True for COMMIT, False for ABORT."""
    log = state.partition_log(topic, partition)
    data = memoryview(log.read(0, 1 << 20, 0).records)
    found, pos = [], 0
    while pos < len(data):
        batch = RecordBatch(data[pos:])
        pos += batch.size_in_bytes
        if batch.is_control:
            key = next(iter(batch)).key
            assert key is not None
            found.append(int.from_bytes(key[2:4], "big") == 1)
    return found


def _setup():  # type: ignore[no-untyped-def]
    state = make_state()
    state.create_topic("t", 2, 1)
    tc: TransactionCoordinator = state.txns
    node = tc.coordinator_for(TID)
    assert node is not None
    r = tc.init_producer_id(node, TID, 60_000)
    assert r.error is Code.NONE
    return state, tc, node, r.producer_id, r.producer_epoch


def test_not_coordinator_and_idempotent_ids_anywhere() -> None:
    state, tc, node, _pid, _epoch = _setup()
    other = next(n for n in state.nodes if n != node)
    assert tc.init_producer_id(other, TID, 60_000).error is Code.NOT_COORDINATOR
    assert tc.end_txn(other, TID, 1, 0, True) is Code.NOT_COORDINATOR
    # producers without a transactional id may ask any node
    assert tc.init_producer_id(other, None, 0).error is Code.NONE


def test_commit_writes_markers_and_materializes_offsets() -> None:
    state, tc, node, pid, epoch = _setup()
    codes = tc.add_partitions(node, TID, pid, epoch, [("t", 0), ("t", 1)])
    assert set(codes.values()) == {Code.NONE}
    assert tc.is_partition_in_transaction(pid, epoch, "t", 0)
    _produce(state, "t", 0, pid, epoch, 0)
    log0 = state.partition_log("t", 0)
    assert log0.last_stable_offset == 0  # the open transaction holds the LSO back
    gc = state.groups
    gnode = gc.coordinator_for("grp")
    assert tc.add_offsets(node, TID, pid, epoch, "grp") is Code.NONE
    staged = gc.txn_commit_offsets(gnode, "grp", pid, epoch, {("t", 0): OffsetAndMetadata(1)})
    assert staged == {("t", 0): Code.NONE}
    _, fetched = gc.fetch_offsets(gnode, "grp", [("t", 0)], require_stable=True)
    assert fetched[("t", 0)] == (None, Code.UNSTABLE_OFFSET_COMMIT)
    _, fetched = gc.fetch_offsets(gnode, "grp", [("t", 0)])
    assert fetched[("t", 0)] == (None, Code.NONE)  # not visible before the commit
    assert tc.end_txn(node, TID, pid, epoch, True) is Code.NONE
    assert tc.manager.get(TID).state is TxnState.COMPLETE_COMMIT  # type: ignore[union-attr]
    assert _control_types(state, "t", 0) == [True]
    assert _control_types(state, "t", 1) == [True]
    assert log0.last_stable_offset == log0.log_end_offset
    offsets_partition = gc.topic.partition_for("grp")
    assert _control_types(state, "__consumer_offsets", offsets_partition) == [True]
    _, fetched = gc.fetch_offsets(gnode, "grp", [("t", 0)], require_stable=True)
    assert fetched[("t", 0)][0] is not None and fetched[("t", 0)][0].offset == 1  # type: ignore[union-attr]


def test_abort_discards_staged_offsets() -> None:
    state, tc, node, pid, epoch = _setup()
    gc = state.groups
    gnode = gc.coordinator_for("grp")
    tc.add_offsets(node, TID, pid, epoch, "grp")
    gc.txn_commit_offsets(gnode, "grp", pid, epoch, {("t", 1): OffsetAndMetadata(9)})
    assert tc.end_txn(node, TID, pid, epoch, False) is Code.NONE
    _, fetched = gc.fetch_offsets(gnode, "grp", [("t", 1)], require_stable=True)
    assert fetched[("t", 1)] == (None, Code.NONE)
    assert _control_types(state, "__consumer_offsets", gc.topic.partition_for("grp")) == [False]


def test_unknown_partition_refuses_whole_request() -> None:
    _state, tc, node, pid, epoch = _setup()
    codes = tc.add_partitions(node, TID, pid, epoch, [("t", 0), ("nope", 0)])
    assert codes == {("t", 0): Code.OPERATION_NOT_ATTEMPTED,
                     ("nope", 0): Code.UNKNOWN_TOPIC_OR_PARTITION}
    assert tc.manager.get(TID).state is TxnState.EMPTY  # type: ignore[union-attr]


def test_marker_waits_for_partition_leader() -> None:
    state, tc, node, pid, epoch = _setup()
    tc.add_partitions(node, TID, pid, epoch, [("t", 0), ("t", 1)])
    leader1 = state.partition_leader("t", 1)
    if leader1 == node:  # keep the coordinator alive; move its partition elsewhere first
        target = next(n for n in state.nodes if n != node)
        state.move_leader("t", 1, target)
        leader1 = target
    state.set_node_alive(leader1, False)
    assert tc.coordinator_for(TID) == node
    assert tc.end_txn(node, TID, pid, epoch, True) is Code.NONE
    assert tc.manager.get(TID).state is TxnState.PREPARE_COMMIT  # type: ignore[union-attr]
    assert tc.add_partitions(node, TID, pid, epoch, [("t", 0)]) == {
        ("t", 0): Code.CONCURRENT_TRANSACTIONS
    }
    state.set_node_alive(leader1, True)
    tc.tick(state.clock.now_ms())
    assert tc.manager.get(TID).state is TxnState.COMPLETE_COMMIT  # type: ignore[union-attr]
    assert _control_types(state, "t", 1) == [True]


def test_timeout_abort_in_tick_fences_producer() -> None:
    state, tc, node, pid, epoch = _setup()
    clock = state.clock
    assert isinstance(clock, ManualClock)
    tc.add_partitions(node, TID, pid, epoch, [("t", 0)])
    _produce(state, "t", 0, pid, epoch, 0)
    clock.advance(60_000)
    tc.tick(clock.now_ms())
    assert tc.manager.get(TID).state is TxnState.COMPLETE_ABORT  # type: ignore[union-attr]
    assert _control_types(state, "t", 0) == [False]
    assert tc.end_txn(node, TID, pid, epoch, True) is Code.PRODUCER_FENCED
    again = tc.init_producer_id(node, TID, 60_000)
    assert again.error is Code.NONE and again.producer_epoch == epoch + 2


def test_init_aborts_ongoing_transaction_at_once() -> None:
    state, tc, node, pid, epoch = _setup()
    tc.add_partitions(node, TID, pid, epoch, [("t", 0)])
    r = tc.init_producer_id(node, TID, 60_000)
    assert (r.error, r.producer_id, r.producer_epoch) == (Code.NONE, pid, epoch + 2)
    assert _control_types(state, "t", 0) == [False]


def test_state_reloads_from_log() -> None:
    state, tc, node, pid, epoch = _setup()
    tc.add_partitions(node, TID, pid, epoch, [("t", 0)])
    fresh = TransactionCoordinator(state)
    fresh.load_from_log()
    md = fresh.manager.get(TID)
    assert md is not None
    assert (md.producer_id, md.producer_epoch, md.state) == (pid, epoch, TxnState.ONGOING)
    assert md.partitions == {("t", 0)}
    assert fresh.init_producer_id(node, None, 0).producer_id > pid
