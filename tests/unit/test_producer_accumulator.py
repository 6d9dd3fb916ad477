"""RecordAccumulator and ProducerBatch: append, ready, drain, retries, memory, expiry, split."""

from __future__ import annotations

import itertools
import random

import pytest

from streamclient.errors import (
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    ProducerClosed,
)
from streamclient.producer.accumulator import LeaderMap, RecordAccumulator
from streamclient.producer.batch import ProducerBatch
from streamclient.producer.config import ProducerConfig
from streamclient.producer.idempotence import IdempotenceState
from streamclient.producer.partitioner import UNKNOWN_PARTITION
from streamclient.protocol.records import RecordBatch
from streamclient.structs import TopicPartition

T0, T1, T2, T3 = (TopicPartition("t", p) for p in range(4))
CLUSTER = LeaderMap({T0: 1, T1: 2, T2: 1, T3: 2})
VALUE = b"v" * 100


def make(**kwargs: object) -> RecordAccumulator:
    kwargs.setdefault("enable_idempotence", False)
    config = ProducerConfig(**kwargs)
    idem = None
    if config.enable_idempotence:
        idem = IdempotenceState(retries=config.retries,
                                delivery_timeout_ms=config.delivery_timeout)
        idem.set_producer_id_and_epoch(1000, 0)
    return RecordAccumulator(config, idempotence=idem, rng=random.Random(7))


def fill(acc: RecordAccumulator, partition: int, count: int, now_ms: int = 0) -> list:
    return [acc.append("t", partition, None, None, VALUE, (), CLUSTER, now_ms).future
            for _ in range(count)]


# --- append ----------------------------------------------------------------------------


def test_append_reports_new_batch_and_full() -> None:
    acc = make(max_batch_size=1024)
    first = acc.append("t", 0, 5, b"k", VALUE, (), CLUSTER, 0)
    assert first.new_batch_created and not first.batch_is_full and first.partition == 0
    results = [acc.append("t", 0, 5, b"k", VALUE, (), CLUSTER, 0) for _ in range(20)]
    assert any(r.batch_is_full for r in results)
    assert sum(r.new_batch_created for r in results) >= 1
    assert acc.queue_sizes("t")[0] >= 2


def test_handle_resolves_to_record_metadata_on_completion() -> None:
    acc = make()
    handles = [acc.append("t", 1, 1000 + i, b"k", VALUE, (), CLUSTER, 50).future
               for i in range(3)]
    seen: list[int] = []
    handles[2].add_done_callback(lambda h: seen.append(h.value().offset))
    batch = acc.drain(CLUSTER, {2}, 10**6, 10)[2][0]
    assert not handles[0].done()
    assert acc.complete_batch(batch, 500, -1, 7)
    metas = [h.value() for h in handles]
    assert [m.offset for m in metas] == [500, 501, 502]
    assert [m.timestamp for m in metas] == [1000, 1001, 1002]
    assert metas[0].timestamp_type == 0 and metas[0].log_start_offset == 7
    assert metas[0].topic_partition == T1
    assert seen == [502]
    assert handles[0].serialized_key_size == 1 and handles[0].serialized_value_size == 100
    assert not acc.has_incomplete()


def test_log_append_time_and_acks_zero() -> None:
    acc = make(acks=0)
    handle = acc.append("t", 0, None, None, VALUE, (), CLUSTER, 123).future
    batch = acc.drain(CLUSTER, {1}, 10**6, 0)[1][0]
    assert acc.complete_batch(batch, -1, no_ack=True)
    meta = handle.value()
    assert meta.offset == -1 and meta.timestamp == 123 and batch.result.no_ack
    assert acc.memory_used == 0
    acc2 = make()
    handle2 = acc2.append("t", 0, 5, None, VALUE, (), CLUSTER, 0).future
    acc2.complete_batch(acc2.drain(CLUSTER, {1}, 10**6, 0)[1][0], 10, 99999)
    assert handle2.value().timestamp == 99999 and handle2.value().timestamp_type == 1


def test_failure_reaches_every_handle_and_wait() -> None:
    acc = make()
    handles = fill(acc, 0, 3)
    batch = acc.drain(CLUSTER, {1}, 10**6, 0)[1][0]
    acc.fail_batch(batch, NotLeaderForPartitionError())
    for handle in handles:
        assert handle.wait(0) and isinstance(handle.exception(), NotLeaderForPartitionError)
        with pytest.raises(NotLeaderForPartitionError):
            handle.get(0)


def test_record_larger_than_max_request_size_is_rejected() -> None:
    acc = make(max_request_size=1000)
    with pytest.raises(MessageSizeTooLargeError, match="max_request_size"):
        acc.append("t", 0, None, None, b"x" * 1000, (), CLUSTER, 0)
    with pytest.raises(MessageSizeTooLargeError):
        acc.append("t", 0, None, None, b"x" * 800, [("h", b"y" * 200)], CLUSTER, 0)
    assert acc.append("t", 0, None, None, b"x" * 800, (), CLUSTER, 0).future is not None


def test_unknown_partition_uses_the_sticky_partitioner() -> None:
    acc = make(max_batch_size=1024, partitioner_adaptive_partitioning_enable=False)
    chosen = [acc.append("t", UNKNOWN_PARTITION, None, None, VALUE, (), CLUSTER, 0).partition
              for _ in range(60)]
    # sticks to one partition for runs of one to two batches, then moves
    runs = [1]
    for prev, cur in itertools.pairwise(chosen):
        if cur == prev:
            runs[-1] += 1
        else:
            runs.append(1)
    assert len(runs) >= 3
    per_batch = 1024 // 110
    assert all(run >= per_batch - 1 for run in runs[:-1])
    # (a run may be longer: the next draw can pick the same partition again)
    assert len(set(chosen)) >= 2


def test_abort_on_new_batch_appends_nothing() -> None:
    acc = make()
    first = acc.append("t", 0, None, None, VALUE, (), CLUSTER, 0, abort_on_new_batch=True)
    assert first.abort_for_new_batch and first.future is None
    assert not acc.has_incomplete()
    acc.append("t", 0, None, None, VALUE, (), CLUSTER, 0)
    again = acc.append("t", 0, None, None, VALUE, (), CLUSTER, 0, abort_on_new_batch=True)
    assert again.future is not None and not again.abort_for_new_batch


def test_closed_accumulator_refuses_appends() -> None:
    acc = make()
    acc.close()
    with pytest.raises(ProducerClosed):
        acc.append("t", 0, None, None, VALUE, (), CLUSTER, 0)


# --- memory ---------------------------------------------------------------------------


def test_memory_limit_blocks_and_release_wakes() -> None:
    acc = make(max_batch_size=1024, buffer_memory=2048, linger_ms=1000)
    woken: list[int] = []
    acc.on_memory_freed = lambda: woken.append(acc.memory_used)
    fill(acc, 0, 1)
    fill(acc, 1, 1)
    assert acc.memory_used == 2048
    blocked = acc.append("t", 2, None, None, VALUE, (), CLUSTER, 0)
    assert blocked.would_block and blocked.future is None
    # a full buffer makes everything sendable despite the linger
    assert acc.ready(CLUSTER, 0).ready_nodes == {1, 2}
    # appending to an existing batch needs no memory
    assert acc.append("t", 0, None, None, VALUE, (), CLUSTER, 0).future is not None
    batch = acc.drain(CLUSTER, {1}, 10**6, 0)[1][0]
    acc.complete_batch(batch, 0)
    assert woken == [1024]
    assert acc.append("t", 2, None, None, VALUE, (), CLUSTER, 0).future is not None
    assert acc.ready(CLUSTER, 1).ready_nodes == set()  # lingering again


# --- ready -----------------------------------------------------------------------------


def test_linger_then_ready() -> None:
    acc = make(linger_ms=10)
    fill(acc, 0, 1, now_ms=100)
    result = acc.ready(CLUSTER, 104)
    assert result.ready_nodes == set() and result.next_ready_check_delay_ms == 6
    assert acc.ready(CLUSTER, 110).ready_nodes == {1}


def test_full_batch_is_ready_before_linger() -> None:
    acc = make(linger_ms=10000, max_batch_size=512)
    fill(acc, 1, 5)
    assert acc.ready(CLUSTER, 0).ready_nodes == {2}


def test_flush_makes_everything_ready() -> None:
    acc = make(linger_ms=10000)
    fill(acc, 0, 1)
    assert acc.ready(CLUSTER, 0).ready_nodes == set()
    acc.begin_flush()
    assert acc.ready(CLUSTER, 0).ready_nodes == {1}
    acc.flush_done()
    assert acc.ready(CLUSTER, 0).ready_nodes == set()
    acc.close()
    assert acc.ready(CLUSTER, 0).ready_nodes == {1}


def test_unknown_leader_reported() -> None:
    acc = make()
    fill(acc, 0, 1)
    cluster = LeaderMap({T0: None, T1: 2})
    result = acc.ready(cluster, 0)
    assert result.ready_nodes == set() and result.unknown_leader_topics == {"t"}


def test_empty_accumulator_has_no_deadline() -> None:
    assert acc_ready_delay(make()) == float("inf")


def acc_ready_delay(acc: RecordAccumulator) -> float:
    return acc.ready(CLUSTER, 0).next_ready_check_delay_ms


def test_retry_backs_off_exponentially_with_jitter() -> None:
    acc = make(retry_backoff_ms=100, retry_backoff_max_ms=1000)
    fill(acc, 0, 1)
    batch = acc.drain(CLUSTER, {1}, 10**6, 0)[1][0]
    acc.reenqueue(batch, 1000)
    assert 80 <= batch.retry_backoff_ms <= 120
    result = acc.ready(CLUSTER, 1050)
    assert result.ready_nodes == set()
    assert result.next_ready_check_delay_ms == pytest.approx(batch.retry_backoff_ms - 50)
    assert acc.drain(CLUSTER, {1}, 10**6, 1050) == {}
    assert acc.ready(CLUSTER, 1121).ready_nodes == {1}
    delays = [acc.retry_backoff_ms(n) for n in range(8)]
    assert 160 <= delays[1] <= 240 and 320 <= delays[2] <= 480
    assert all(800 <= d <= 1200 for d in delays[4:])


def test_adaptive_partitioning_gets_queue_sizes() -> None:
    acc = make(max_batch_size=512)
    for p, count in ((0, 1), (1, 20), (2, 1), (3, 1)):
        fill(acc, p, count)
    acc.ready(CLUSTER, 0)
    stats = acc.sticky_partitioner("t").load_stats
    assert stats is not None
    weights = dict(zip(stats.partition_ids, stats.cumulative_frequency_table, strict=True))
    assert weights[1] - weights[0] < weights[0]  # the long queue weighs least


# --- drain ----------------------------------------------------------------------------


def test_drain_respects_max_request_size_but_always_takes_one() -> None:
    acc = make(max_batch_size=1024)
    fill(acc, 0, 8)
    fill(acc, 2, 8)
    drained = acc.drain(CLUSTER, {1}, 100, 0)[1]
    assert len(drained) == 1  # larger than 100 bytes, but the first batch always goes
    drained = acc.drain(CLUSTER, {1}, 2000, 0)[1]
    assert len(drained) == 1
    assert sum(b.estimated_size for b in drained) <= 2000


def test_drain_round_robins_per_node() -> None:
    acc = make(max_batch_size=512)
    for p in range(4):
        fill(acc, p, 12)  # several batches each
    order = []
    for _ in range(4):
        batches = acc.drain(CLUSTER, {1}, 600, 0)[1]
        order.extend(b.topic_partition.partition for b in batches)
    # one batch per request (600 bytes), alternating between node 1's partitions
    assert order == [0, 2, 0, 2] or order == [2, 0, 2, 0]
    assert set(acc.drain(CLUSTER, {2}, 10**6, 0)) == {2}


def test_guarantee_order_mutes_partition_until_complete() -> None:
    acc = make(max_in_flight_requests_per_connection=1)
    fill(acc, 0, 1)
    batch = acc.drain(CLUSTER, {1}, 10**6, 0)[1][0]
    fill(acc, 0, 1)
    assert acc.is_muted(T0) and acc.drain(CLUSTER, {1}, 10**6, 0) == {}
    acc.complete_batch(batch, 0)
    assert not acc.is_muted(T0) and acc.drain(CLUSTER, {1}, 10**6, 0)


def test_sequences_assigned_at_drain_and_contiguous() -> None:
    acc = make(enable_idempotence=True, max_batch_size=1024)
    fill(acc, 0, 30)
    assert all(not b.has_sequence for b in list(acc._incomplete))
    batches: list[ProducerBatch] = []
    while acc.has_undrained():
        batches += acc.drain(CLUSTER, {1}, 10**6, 0)[1]
    assert len(batches) >= 3
    expected = 0
    for batch in batches:
        assert batch.base_sequence == expected and batch.producer_id == 1000
        expected += batch.record_count
        header = RecordBatch(batch.build())
        assert header.base_sequence == batch.base_sequence and header.producer_epoch == 0
    assert expected == 30


def test_no_drain_without_producer_id() -> None:
    acc = make(enable_idempotence=True)
    assert acc.idempotence is not None
    acc.idempotence.reset_producer_id()
    fill(acc, 0, 1)
    assert acc.drain(CLUSTER, {1}, 10**6, 0) == {}


def test_retried_batch_reenqueued_in_sequence_order_and_drained_alone() -> None:
    acc = make(enable_idempotence=True, max_batch_size=512)
    fill(acc, 0, 16)  # four batches of four
    first = [acc.drain(CLUSTER, {1}, 600, 0)[1][0] for _ in range(3)]
    assert [b.base_sequence for b in first] == [0, 4, 8]
    # the responses fail out of order: the second, then the first
    acc.reenqueue(first[1], 10)
    acc.reenqueue(first[0], 11)
    queued = list(acc._topics["t"].batches[0])
    assert [b.base_sequence for b in queued] == [0, 4, -1]
    # the retry of 0 goes out alone; 4 waits until 0 is no longer in flight
    drained = acc.drain(CLUSTER, {1}, 10**6, 1000)[1]
    assert [b.base_sequence for b in drained] == [0]
    assert acc.drain(CLUSTER, {1}, 10**6, 1000) == {}
    acc.complete_batch(drained[0], 100)
    drained = acc.drain(CLUSTER, {1}, 10**6, 1000)[1]
    assert [b.base_sequence for b in drained] == [4]


# --- expiry -----------------------------------------------------------------------------


def test_delivery_timeout_fails_queued_batches() -> None:
    acc = make(delivery_timeout_ms=50000, request_timeout_ms=40000, linger_ms=0)
    old = fill(acc, 0, 2, now_ms=0)
    fill(acc, 1, 1, now_ms=20000)
    assert acc.next_expiry_ms() == 50000
    assert acc.fail_expired_batches(49999) == []
    expired = acc.fail_expired_batches(50000)
    assert len(expired) == 1 and expired[0].topic_partition == T0
    for handle in old:
        assert isinstance(handle.exception(), KafkaTimeoutError)
    assert acc.has_incomplete()  # partition 1 still queued
    assert acc.memory_used == acc.batch_size


def test_expired_retry_marks_sequence_unresolved() -> None:
    acc = make(enable_idempotence=True, delivery_timeout_ms=50000, request_timeout_ms=40000)
    fill(acc, 0, 2)
    batch = acc.drain(CLUSTER, {1}, 10**6, 0)[1][0]
    acc.reenqueue(batch, 10)
    acc.fail_expired_batches(60000)
    assert acc.idempotence is not None
    assert acc.idempotence.unresolved == {T0: 2}


def test_abort_incomplete_fails_queued_and_in_flight() -> None:
    acc = make()
    queued = fill(acc, 0, 1)
    in_flight = acc.drain(CLUSTER, {1}, 10**6, 0)[1][0]
    queued += fill(acc, 0, 1)
    assert acc.abort_incomplete(ProducerClosed()) == 2
    assert all(isinstance(h.exception(), ProducerClosed) for h in queued)
    assert in_flight.final_state == "aborted"
    assert acc.memory_used == 0 and not acc.has_undrained()


# --- split ------------------------------------------------------------------------------


def test_split_keeps_handles_and_sequences() -> None:
    acc = make(enable_idempotence=True, max_batch_size=4096)
    handles = [acc.append("t", 0, 1000 + i, None, VALUE, (), CLUSTER, 0).future
               for i in range(30)]
    big = acc.drain(CLUSTER, {1}, 10**6, 0)[1][0]
    assert big.record_count == 30 and big.base_sequence == 0
    acc.batch_size = 1024  # the broker takes less than we batched
    count = acc.split_and_reenqueue(big)
    assert count >= 3
    parts = list(acc._topics["t"].batches[0])
    assert [p.base_sequence for p in parts] == [
        sum(q.record_count for q in parts[:i]) for i in range(len(parts))]
    assert all(p.producer_id == 1000 and p.is_split_batch for p in parts)
    assert not handles[0].done()
    offset = 0
    while acc.has_undrained():
        drained = acc.drain(CLUSTER, {1}, 10**6, 0)[1]
        for batch in drained:
            acc.complete_batch(batch, 5000 + offset)
            offset += batch.record_count
    assert [h.value().offset for h in handles] == list(range(5000, 5030))
    assert [h.value().timestamp for h in handles] == list(range(1000, 1030))
    assert not acc.has_incomplete() and acc.memory_used == 0


def test_single_record_batch_cannot_split() -> None:
    acc = make()
    fill(acc, 0, 1)
    batch = acc.drain(CLUSTER, {1}, 10**6, 0)[1][0]
    with pytest.raises(Exception, match="cannot be split"):
        batch.split(100)


def test_retried_batch_at_head_takes_no_new_records() -> None:
    acc = make()
    fill(acc, 0, 1)
    batch = acc.drain(CLUSTER, {1}, 10**6, 0)[1][0]
    acc.reenqueue(batch, 0)
    result = acc.append("t", 0, None, None, VALUE, (), CLUSTER, 0)
    assert result.new_batch_created and batch.record_count == 1
    assert isinstance(batch, ProducerBatch) and batch.closed
