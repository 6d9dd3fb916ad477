"""``RecordAccumulator``: per-partition queues of batches between ``send()`` and the sender.

Sans-IO and synchronous (the Java client's ``RecordAccumulator``): ``append`` is plain
Python with no awaits, so ``send()`` costs an encode and a few dict lookups while there is
room; the async sender (or the sync facade's caller thread, under a lock) drives the rest
with ``now_ms`` and a :class:`ClusterView` of the metadata:

* :meth:`RecordAccumulator.append` adds a record (choosing the partition with the topic's
  KIP-794 :class:`BuiltInPartitioner` when it is ``UNKNOWN_PARTITION``); when memory is
  short it appends nothing and answers ``would_block``;
* :meth:`~RecordAccumulator.ready` says which leaders have something sendable, and when to
  look again;
* :meth:`~RecordAccumulator.drain` takes batches for those leaders, assigning sequences;
* :meth:`~RecordAccumulator.complete_batch`, :meth:`~RecordAccumulator.fail_batch`,
  :meth:`~RecordAccumulator.reenqueue`, :meth:`~RecordAccumulator.split_and_reenqueue`
  apply the decision :func:`~streamclient.producer.idempotence.handle_produce_error`
  made for a response; :meth:`~RecordAccumulator.fail_expired_batches` enforces
  ``delivery_timeout_ms``.

The caller serialises access (one event loop, or a lock for the sync facade).
"""

from __future__ import annotations

import math
import random as _random
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from streamclient._native import native_impl
from streamclient.errors import (
    IllegalStateError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    ProducerClosed,
)
from streamclient.producer.batch import ProducerBatch
from streamclient.producer.config import ProducerConfig
from streamclient.producer.idempotence import IdempotenceState
from streamclient.producer.partitioner import (
    BuiltInPartitioner,
    NodeLatencyStats,
    StickyPartitionInfo,
)
from streamclient.producer.result import FutureRecordMetadata, ProduceRequestResult
from streamclient.protocol.records import (
    CompressionRatioEstimator,
    RecordBatch,
    RecordBatchBuilder,
)
from streamclient.protocol.records.batch import HEADER_SIZE
from streamclient.protocol.records.builder import Header
from streamclient.structs import TopicPartition

if TYPE_CHECKING:
    from streamclient.producer.fastpath import FastAppender
else:
    from streamclient.producer.fastpath import FastAppender as _PyFastAppender

    FastAppender = native_impl("streamclient.producer._cfastpath", "FastAppender", _PyFastAppender)

__all__ = [
    "ClusterView",
    "LeaderMap",
    "ReadyCheckResult",
    "RecordAccumulator",
    "RecordAppendResult",
    "TransactionGate",
]

Bytes = bytes | bytearray | memoryview

# Per-record overhead bound for the quick size check (length, attributes, timestamp and
# offset deltas, key and value lengths as varints): below the limit minus this, a record
# cannot be too large, and the exact estimate is skipped.
_RECORD_OVERHEAD_BOUND = 5 + 1 + 10 + 5 + 5 + 5 + 1


class ClusterView(Protocol):
    """The metadata the accumulator reads (a snapshot; the cluster layer implements it)."""

    def leader_for(self, tp: TopicPartition) -> int | None: ...

    def partitions_for_node(self, node_id: int) -> Sequence[TopicPartition]: ...

    def partitions_for_topic(self, topic: str) -> Sequence[int]: ...

    def available_partitions_for_topic(self, topic: str) -> Sequence[int]: ...


class LeaderMap:
    """A :class:`ClusterView` from ``{TopicPartition: leader node id or None}``."""

    def __init__(self, leaders: Mapping[TopicPartition, int | None]) -> None:
        self.leaders = dict(leaders)
        self._by_node: dict[int, list[TopicPartition]] = {}
        self._by_topic: dict[str, list[int]] = {}
        self._available: dict[str, list[int]] = {}
        for tp in sorted(self.leaders):
            leader = self.leaders[tp]
            self._by_topic.setdefault(tp.topic, []).append(tp.partition)
            self._available.setdefault(tp.topic, [])
            if leader is not None:
                self._by_node.setdefault(leader, []).append(tp)
                self._available[tp.topic].append(tp.partition)

    def leader_for(self, tp: TopicPartition) -> int | None:
        return self.leaders.get(tp)

    def partitions_for_node(self, node_id: int) -> Sequence[TopicPartition]:
        return self._by_node.get(node_id, ())

    def partitions_for_topic(self, topic: str) -> Sequence[int]:
        return self._by_topic.get(topic, ())

    def available_partitions_for_topic(self, topic: str) -> Sequence[int]:
        return self._available.get(topic, ())


class TransactionGate(Protocol):
    """What the accumulator asks of a transaction manager."""

    @property
    def is_completing(self) -> bool: ...


class RecordAppendResult(NamedTuple):
    future: FutureRecordMetadata | None
    # wake the sender: a batch is ready to go whatever the linger
    batch_is_full: bool
    new_batch_created: bool
    # the partitioner asked to be told before a new batch is opened (KIP-480): call
    # on_new_batch(), partition again, append again with abort_on_new_batch=False
    abort_for_new_batch: bool
    # no memory for a new batch: nothing was appended; wait for on_memory_freed (at most
    # max_block_ms in all) and append again, or raise KafkaTimeoutError
    would_block: bool
    partition: int


_make_result = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path


class ReadyCheckResult(NamedTuple):
    ready_nodes: set[int]
    # how long until something not ready now may be (inf: nothing queued)
    next_ready_check_delay_ms: float
    # topics with queued records and a partition without a leader: refresh metadata
    unknown_leader_topics: set[str]


class _TopicInfo:
    __slots__ = ("batches", "partitioner", "tps")

    def __init__(self, partitioner: BuiltInPartitioner) -> None:
        self.batches: dict[int, deque[ProducerBatch]] = {}
        self.partitioner = partitioner
        self.tps: dict[int, TopicPartition] = {}


class RecordAccumulator:
    def __init__(self, config: ProducerConfig, *,
                 idempotence: IdempotenceState | None = None,
                 transactions: TransactionGate | None = None,
                 rng: _random.Random | None = None,
                 estimator: CompressionRatioEstimator | None = None,
                 handle_class: type[FutureRecordMetadata] = FutureRecordMetadata) -> None:
        self.config = config
        # the per-record handle's class (the async producer's RecordFuture)
        self.handle_class = handle_class
        self.batch_size = config.max_batch_size
        self.linger_ms = config.linger_ms
        self.buffer_memory = config.buffer_memory
        self.delivery_timeout_ms = config.delivery_timeout
        self.compression = config.compression
        self.compression_level = config.compression_level
        self.idempotence = idempotence
        self.transactions = transactions
        self.is_transactional = config.transactional
        self.adaptive = config.partitioner_adaptive_partitioning_enable
        self.guarantee_order = config.max_in_flight_requests_per_connection == 1
        self.rng = rng if rng is not None else _random.Random()
        self.estimator = estimator if estimator is not None else CompressionRatioEstimator()
        self.node_stats = NodeLatencyStats(config.partitioner_availability_timeout_ms)
        self._retry_backoff_ms = config.retry_backoff_ms
        self._retry_backoff_max_ms = config.retry_backoff_max_ms
        self._quick_limit = min(config.max_request_size, config.buffer_memory) - (
            HEADER_SIZE + _RECORD_OVERHEAD_BOUND)
        self._topics: dict[str, _TopicInfo] = {}
        self._incomplete: dict[ProducerBatch, None] = {}  # insertion-ordered set
        self._muted: set[TopicPartition] = set()
        self._drain_index: dict[int, int] = {}
        self._flushes_in_progress = 0
        self._closed = False
        self.memory_used = 0
        # set when an append found no memory; cleared when memory is freed.  While set,
        # every batch is sendable (Java: "exhausted" while the buffer pool has waiters).
        self._exhausted = False
        # called after memory is returned, so a blocked send() can try again
        self.on_memory_freed: Callable[[], None] | None = None
        # the common case of append(), in one call; close() turns every appender off
        self._fast = FastAppender(self._topics, None, self._quick_limit)
        self._fast_appenders = [self._fast]

    def fast_appender(self, view: Any) -> FastAppender:
        """A :class:`~streamclient.producer.fastpath.FastAppender` for ``send()``, which
        declines topics whose metadata ``view`` has not cached (``send()`` waits for
        those)."""
        appender = FastAppender(self._topics, view, self._quick_limit)
        self._fast_appenders.append(appender)
        return appender

    # --- appending (the hot path) ---------------------------------------------------

    def append(self, topic: str, partition: int, timestamp_ms: int | None,
               key: Bytes | None, value: Bytes | None, headers: Sequence[Header],
               cluster: ClusterView | None, now_ms: int,
               abort_on_new_batch: bool = False) -> RecordAppendResult:
        """Add one serialized record.  ``timestamp_ms=None`` stamps ``now_ms``.

        ``partition`` is the partitioner's choice, or ``UNKNOWN_PARTITION`` to use the
        topic's sticky partition (which needs ``cluster``).  Raises
        ``MessageSizeTooLargeError`` for a record that can never be sent, and
        ``ProducerClosed`` after :meth:`close`.
        """
        if self._closed:
            raise ProducerClosed("the producer is closed")
        size = (0 if key is None else len(key)) + (0 if value is None else len(value))
        if headers or size > self._quick_limit:
            self._check_record_size(key, value, headers)
        if timestamp_ms is None:
            timestamp_ms = now_ms
        info = self._topics.get(topic)
        if info is None:
            info = self._add_topic(topic)
        if partition < 0:
            if not headers and cluster is not None and not abort_on_new_batch and (
                    value is not None):
                # woken=False: the fast path declines whenever the sender must be told
                future = self._fast.append(topic, timestamp_ms, key, value, False)
                if future is not None:
                    return _make_result(RecordAppendResult, (
                        future, False, False, False, False,
                        future._result.topic_partition.partition))
            return self._append_sticky(info, topic, timestamp_ms, key, value, headers,
                                       cluster, now_ms, abort_on_new_batch)
        dq = info.batches.get(partition)
        if dq is None:
            dq = info.batches[partition] = deque()
        if dq:
            batch = dq[-1]
            appended = batch.try_append(timestamp_ms, key, value, headers)
            if appended is not None:
                return _make_result(RecordAppendResult, (
                    appended, len(dq) > 1 or batch.is_full(), False, False, False, partition))
        if abort_on_new_batch:
            return _make_result(RecordAppendResult,
                                (None, False, False, True, False, partition))
        return self._append_new_batch(info, topic, partition, dq, timestamp_ms, key, value,
                                      headers, now_ms)

    def _append_sticky(self, info: _TopicInfo, topic: str, timestamp_ms: int,
                       key: Bytes | None, value: Bytes | None, headers: Sequence[Header],
                       cluster: ClusterView | None, now_ms: int,
                       abort_on_new_batch: bool) -> RecordAppendResult:
        if cluster is None:
            raise IllegalStateError("choosing a partition needs the cluster metadata")
        sticky = info.partitioner
        all_partitions = cluster.partitions_for_topic(topic)
        if not all_partitions:
            raise IllegalStateError(f"no partitions known for topic {topic!r}")
        available = cluster.available_partitions_for_topic(topic)
        while True:
            pinfo = sticky.peek_current_partition_info(all_partitions, available)
            partition = pinfo.index
            dq = info.batches.get(partition)
            if dq is None:
                dq = info.batches[partition] = deque()
            if not dq or dq[-1].is_full():
                # a switch deferred until this partition's batches filled up may happen now
                sticky.update_partition_info(pinfo, 0, all_partitions, available, True)
                if sticky.is_partition_changed(pinfo):
                    continue
            if dq:
                batch = dq[-1]
                before = batch.estimated_size
                future = batch.try_append(timestamp_ms, key, value, headers)
                if future is not None:
                    sticky.update_partition_info(pinfo, batch.estimated_size - before,
                                                 all_partitions, available, batch.is_full())
                    return _make_result(RecordAppendResult, (
                        future, len(dq) > 1 or batch.is_full(), False, False, False,
                        partition))
            if abort_on_new_batch:
                return _make_result(RecordAppendResult,
                                    (None, False, False, True, False, partition))
            return self._append_sticky_new_batch(info, pinfo, topic, dq, timestamp_ms, key,
                                                 value, headers, cluster, now_ms)

    def _append_sticky_new_batch(self, info: _TopicInfo, pinfo: StickyPartitionInfo,
                                 topic: str, dq: deque[ProducerBatch], timestamp_ms: int,
                                 key: Bytes | None, value: Bytes | None,
                                 headers: Sequence[Header], cluster: ClusterView,
                                 now_ms: int) -> RecordAppendResult:
        result = self._append_new_batch(info, topic, pinfo.index, dq, timestamp_ms, key,
                                        value, headers, now_ms)
        if result.future is not None:
            batch = dq[-1]
            info.partitioner.update_partition_info(
                pinfo, batch.estimated_size, cluster.partitions_for_topic(topic),
                cluster.available_partitions_for_topic(topic), batch.is_full())
        return result

    def _append_new_batch(self, info: _TopicInfo, topic: str, partition: int,
                          dq: deque[ProducerBatch], timestamp_ms: int, key: Bytes | None,
                          value: Bytes | None, headers: Sequence[Header],
                          now_ms: int) -> RecordAppendResult:
        # Reserve what Java's BufferPool would hand out: one batch_size buffer, or a
        # bigger one for a record that exceeds it.
        memory = max(self.batch_size,
                     RecordBatchBuilder.estimate_size_in_bytes(key, value, headers))
        if self.memory_used + memory > self.buffer_memory:
            self._exhausted = True
            return _make_result(RecordAppendResult,
                                (None, False, False, False, True, partition))
        self.memory_used += memory
        tp = info.tps.get(partition)
        if tp is None:
            tp = info.tps[partition] = TopicPartition(topic, partition)
        builder = RecordBatchBuilder(
            self.compression, self.is_transactional, batch_size=self.batch_size,
            compression_level=self.compression_level,
            compression_ratio_estimate=self.estimator.estimate(topic, self.compression))
        batch = ProducerBatch(tp, builder, now_ms, memory=memory,
                              handle_class=self.handle_class)
        future = batch.try_append(timestamp_ms, key, value, headers)
        assert future is not None  # the first record always fits
        dq.append(batch)
        self._incomplete[batch] = None
        return _make_result(RecordAppendResult, (
            future, len(dq) > 1 or batch.is_full(), True, False, False, partition))

    def append_batch(self, tp: TopicPartition, builder: RecordBatchBuilder,
                     now_ms: int) -> FutureRecordMetadata | None:
        """Queue a batch the application built (aiokafka's ``send_batch``) as it is.

        The batch takes no further records.  Returns the handle of its first record
        (whose offset is the batch's base offset), or ``None`` when memory is short
        (nothing was queued: wait for ``on_memory_freed`` as for :meth:`append`).
        """
        if self._closed:
            raise ProducerClosed("the producer is closed")
        if builder.record_count == 0:
            raise IllegalStateError("cannot send an empty batch")
        size = builder.estimated_size
        if size > self.config.max_request_size or size > self.buffer_memory:
            raise MessageSizeTooLargeError(
                f"The batch is {size} bytes, larger than max_request_size "
                f"({self.config.max_request_size}) or buffer_memory ({self.buffer_memory})")
        if self.memory_used + size > self.buffer_memory:
            self._exhausted = True
            return None
        self.memory_used += size
        batch = ProducerBatch(tp, builder, now_ms, memory=size,
                              handle_class=self.handle_class)
        # one handle per record, so a split (MESSAGE_TOO_LARGE) can chain them as usual
        batch.handles = [
            self.handle_class(batch.result, i, record.timestamp,
                              -1 if record.key is None else len(record.key),
                              -1 if record.value is None else len(record.value))
            for i, record in enumerate(RecordBatch(builder.build()))]
        batch.close()
        self._deque(tp).append(batch)
        self._incomplete[batch] = None
        return batch.handles[0]

    def _add_topic(self, topic: str) -> _TopicInfo:
        rng = self.rng
        info = _TopicInfo(BuiltInPartitioner(topic, self.batch_size,
                                             random_source=lambda: rng.getrandbits(31)))
        self._topics[topic] = info
        return info

    def _check_record_size(self, key: Bytes | None, value: Bytes | None,
                           headers: Sequence[Header]) -> None:
        size = RecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
        if size > self.config.max_request_size:
            raise MessageSizeTooLargeError(
                f"The message is {size} bytes when serialized which is larger than the "
                "maximum request size you have configured with the max_request_size "
                "configuration")
        if size > self.buffer_memory:
            raise MessageSizeTooLargeError(
                f"The message is {size} bytes when serialized which is larger than the "
                "total memory buffer you have configured with the buffer_memory "
                "configuration")

    # --- readiness ---------------------------------------------------------------------

    def ready(self, cluster: ClusterView, now_ms: int) -> ReadyCheckResult:
        """Which leaders have a sendable batch (Java's ``ready``/``partitionReady``).

        A head batch is sendable when its queue holds more than one batch or it is full,
        it has lingered ``linger_ms``, memory is exhausted, a flush is in progress, the
        producer is closing, or a transaction is completing; never while backing off
        after a failed attempt, nor while its partition is muted.
        """
        ready_nodes: set[int] = set()
        unknown_leader_topics: set[str] = set()
        next_delay = math.inf
        force = (self._exhausted or self._closed or self._flushes_in_progress > 0
                 or (self.transactions is not None and self.transactions.is_completing))
        linger = self.linger_ms
        muted = self._muted
        for topic, info in self._topics.items():
            num_partitions = 0
            sizes: list[int] | None = None
            ids: list[int] = []
            if self.adaptive:
                num_partitions = len(cluster.partitions_for_topic(topic))
                if len(info.batches) >= num_partitions:
                    sizes = []
            for partition, dq in info.batches.items():
                tp = info.tps.get(partition)
                if tp is None:
                    tp = info.tps[partition] = TopicPartition(topic, partition)
                leader = cluster.leader_for(tp)
                if sizes is not None and leader is not None and (
                        not self.node_stats.is_excluded(leader)):
                    sizes.append(len(dq))
                    ids.append(partition)
                if not dq:
                    continue
                if leader is None:
                    unknown_leader_topics.add(topic)
                    continue
                if leader in ready_nodes or tp in muted:
                    continue
                batch = dq[0]
                waited = now_ms - batch.last_attempt_ms
                backing_off = batch.attempts > 0 and waited < batch.retry_backoff_ms
                time_to_wait = batch.retry_backoff_ms if backing_off else linger
                sendable = (len(dq) > 1 or batch.is_full() or waited >= time_to_wait
                            or force)
                if sendable and not backing_off:
                    ready_nodes.add(leader)
                else:
                    next_delay = min(next_delay, max(time_to_wait - waited, 0))
            if sizes is not None:
                info.partitioner.update_partition_load_stats(sizes, ids, num_partitions)
        return ReadyCheckResult(ready_nodes, next_delay, unknown_leader_topics)

    def update_node_latency_stats(self, node_id: int, now_ms: int, can_drain: bool) -> None:
        """From the sender, per ready node (``partitioner_availability_timeout_ms``)."""
        self.node_stats.update(node_id, now_ms, can_drain)

    # --- draining ----------------------------------------------------------------------

    def drain(self, cluster: ClusterView, ready_nodes: Iterable[int], max_request_size: int,
              now_ms: int) -> dict[int, list[ProducerBatch]]:
        """Batches to send now, per node, each list within ``max_request_size`` (Java's
        ``drain``).  Drained batches are closed for appends, carry their sequence, and
        stay incomplete until completed, failed or re-enqueued."""
        drained: dict[int, list[ProducerBatch]] = {}
        for node in ready_nodes:
            batches = self._drain_node(cluster, node, max_request_size, now_ms)
            if batches:
                drained[node] = batches
                if self.guarantee_order:
                    # one request per partition at a time keeps retries in order
                    for batch in batches:
                        self._muted.add(batch.topic_partition)
        return drained

    def _drain_node(self, cluster: ClusterView, node: int, max_size: int,
                    now_ms: int) -> list[ProducerBatch]:
        parts = cluster.partitions_for_node(node)
        ready: list[ProducerBatch] = []
        if not parts:
            return ready
        idem = self.idempotence
        size = 0
        # each node keeps its own start so no partition is starved by those before it
        start = index = self._drain_index.get(node, 0) % len(parts)
        while True:
            tp = parts[index]
            self._drain_index[node] = index
            index = (index + 1) % len(parts)
            info = self._topics.get(tp.topic)
            dq = info.batches.get(tp.partition) if info is not None else None
            if dq and tp not in self._muted:
                first = dq[0]
                if not first.is_backing_off(now_ms):
                    estimate = first.estimated_size
                    if ready and size + estimate > max_size:
                        # the first batch always goes, even when larger than max_size
                        break
                    if idem is not None and idem.should_stop_drain(first):
                        break
                    batch = dq.popleft()
                    if idem is not None and not batch.has_sequence:
                        idem.assign_sequence(batch)
                    batch.close()
                    batch.drained(now_ms)
                    size += estimate
                    ready.append(batch)
            if index == start:
                break
        return ready

    def mute(self, tp: TopicPartition) -> None:
        self._muted.add(tp)

    def unmute(self, tp: TopicPartition) -> None:
        self._muted.discard(tp)

    def is_muted(self, tp: TopicPartition) -> bool:
        return tp in self._muted

    # --- outcomes ------------------------------------------------------------------------

    def complete_batch(self, batch: ProducerBatch, base_offset: int,
                       log_append_time: int = -1, log_start_offset: int = -1,
                       record_errors: dict[int, BaseException] | None = None, *,
                       no_ack: bool = False) -> bool:
        """The broker acknowledged the batch (``base_offset=-1`` for a duplicate;
        ``no_ack=True`` for acks=0, once written).  ``False`` if it had already been
        completed (expired)."""
        if no_ack:
            batch.result.no_ack = True
        if self.idempotence is not None:
            self.idempotence.handle_completed_batch(batch, base_offset)
        done = batch.done(base_offset, log_append_time, log_start_offset, None,
                          record_errors)
        self._release(batch)
        return done

    def fail_batch(self, batch: ProducerBatch, exc: BaseException,
                   adjust_sequences: bool = False) -> bool:
        """Give up on the batch; its records' handles raise ``exc``."""
        if self.idempotence is not None:
            self.idempotence.handle_failed_batch(batch, exc, adjust_sequences)
        done = batch.fail(exc)
        self._release(batch)
        return done

    def reenqueue(self, batch: ProducerBatch, now_ms: int) -> None:
        """Queue a failed batch for another attempt, after a backoff."""
        batch.reenqueued(now_ms, self.retry_backoff_ms(batch.attempts))
        dq = self._deque(batch.topic_partition)
        if self.idempotence is not None:
            self._insert_in_sequence_order(dq, batch)
        else:
            dq.appendleft(batch)
        if self.guarantee_order:
            self._muted.discard(batch.topic_partition)

    def split_and_reenqueue(self, batch: ProducerBatch) -> int:
        """MESSAGE_TOO_LARGE: queue the batch's records again in smaller batches; the old
        batch fails, its handles follow their copies.  Returns the number of batches."""
        topic = batch.topic_partition.topic
        ratio = max(1.0, batch.builder.compression_ratio)
        self.estimator.observe(topic, self.compression, ratio)
        parts = batch.split(self.batch_size, ratio)
        dq = self._deque(batch.topic_partition)
        idem = self.idempotence
        if idem is not None and batch.has_sequence:
            idem.remove_in_flight(batch)
        for part in reversed(parts):
            self._incomplete[part] = None
            if idem is not None and part.has_sequence:
                idem.add_in_flight(part)
                self._insert_in_sequence_order(dq, part)
            else:
                dq.appendleft(part)
        batch.fail(MessageSizeTooLargeError(
            f"batch of {batch.record_count} records was split into {len(parts)}"))
        self._release(batch)
        if self.guarantee_order:
            self._muted.discard(batch.topic_partition)
        return len(parts)

    def expired_batches(self, now_ms: int) -> list[ProducerBatch]:
        """Remove and return queued batches older than ``delivery_timeout_ms`` (from the
        head of each queue, in the order they would have been sent)."""
        expired: list[ProducerBatch] = []
        timeout = self.delivery_timeout_ms
        for info in self._topics.values():
            for dq in info.batches.values():
                while dq and dq[0].has_reached_delivery_timeout(timeout, now_ms):
                    batch = dq.popleft()
                    batch.close()
                    expired.append(batch)
        return expired

    def expire_batch(self, batch: ProducerBatch, now_ms: int) -> bool:
        """Fail a batch (queued or in flight) that ran out of ``delivery_timeout_ms``."""
        exc = KafkaTimeoutError(
            f"Expiring {batch.record_count} record(s) for {batch.topic_partition}: "
            f"{now_ms - batch.created_ms} ms has passed since batch creation")
        done = self.fail_batch(batch, exc, adjust_sequences=False)
        if self.idempotence is not None and batch.in_retry and batch.has_sequence:
            # it may have been written: later batches wait until we know
            self.idempotence.mark_sequence_unresolved(batch)
        return done

    def fail_expired_batches(self, now_ms: int) -> list[ProducerBatch]:
        expired = self.expired_batches(now_ms)
        for batch in expired:
            self.expire_batch(batch, now_ms)
        return expired

    def next_expiry_ms(self) -> float:
        """When the oldest queued batch reaches ``delivery_timeout_ms`` (inf if none)."""
        earliest = math.inf
        for info in self._topics.values():
            for dq in info.batches.values():
                if dq:
                    earliest = min(earliest, dq[0].created_ms + self.delivery_timeout_ms)
        return earliest

    def _insert_in_sequence_order(self, dq: deque[ProducerBatch], batch: ProducerBatch) -> None:
        if not batch.has_sequence:
            raise IllegalStateError(f"re-enqueueing {batch!r} without a sequence")
        # Queued batches that already had a sequence are ordered; batches without one
        # come after them.  Put this one before the first with a higher sequence.
        ahead: list[ProducerBatch] = []
        while dq and dq[0].has_sequence and dq[0].base_sequence < batch.base_sequence:
            ahead.append(dq.popleft())
        dq.appendleft(batch)
        for other in reversed(ahead):
            dq.appendleft(other)

    def _deque(self, tp: TopicPartition) -> deque[ProducerBatch]:
        info = self._topics.get(tp.topic)
        if info is None:
            info = self._add_topic(tp.topic)
        dq = info.batches.get(tp.partition)
        if dq is None:
            dq = info.batches[tp.partition] = deque()
            info.tps[tp.partition] = tp
        return dq

    def _release(self, batch: ProducerBatch) -> None:
        if batch in self._incomplete:
            del self._incomplete[batch]
            if batch.memory:
                self.memory_used -= batch.memory
                batch.memory = 0
                self._exhausted = False
                hook = self.on_memory_freed
                if hook is not None:
                    hook()
        if self.guarantee_order:
            self._muted.discard(batch.topic_partition)

    def retry_backoff_ms(self, attempts: int) -> float:
        """``retry_backoff_ms * 2**attempts`` capped at ``retry_backoff_max_ms``, ±20 %
        jitter (KIP-580), from the injected random source."""
        initial, cap = self._retry_backoff_ms, self._retry_backoff_max_ms
        if initial >= cap:
            base = float(cap)
        else:
            base = min(float(cap), initial * 2.0 ** min(attempts, 62))
        return base * (1 + 0.2 * (2 * self.rng.random() - 1))

    # --- flush, abort, close ---------------------------------------------------------------

    def begin_flush(self) -> None:
        """Make every batch sendable until :meth:`flush_done` (one per begin)."""
        self._flushes_in_progress += 1

    def flush_done(self) -> None:
        if self._flushes_in_progress > 0:
            self._flushes_in_progress -= 1

    @property
    def flush_in_progress(self) -> bool:
        return self._flushes_in_progress > 0

    def has_incomplete(self) -> bool:
        return bool(self._incomplete)

    def has_undrained(self) -> bool:
        return any(dq for info in self._topics.values() for dq in info.batches.values())

    def incomplete_results(self) -> list[ProduceRequestResult]:
        """Results to wait on for a flush.  A split replaces a batch with new ones, so
        a flush loops until :meth:`has_incomplete` is false."""
        return [batch.result for batch in self._incomplete]

    def abort_incomplete(self, exc: BaseException) -> int:
        """Fail every batch not yet complete, queued or in flight (forced close, fatal
        error).  Returns how many."""
        for info in self._topics.values():
            for dq in info.batches.values():
                dq.clear()
        batches = list(self._incomplete)
        for batch in batches:
            batch.abort(exc)
            self._release(batch)
        return len(batches)

    def abort_undrained(self, exc: BaseException) -> int:
        """Fail the queued batches that were never sent (a transaction being aborted)."""
        count = 0
        for info in self._topics.values():
            for dq in info.batches.values():
                keep = deque(b for b in dq if b.has_sequence)
                for batch in dq:
                    if not batch.has_sequence:
                        batch.abort(exc)
                        self._release(batch)
                        count += 1
                dq.clear()
                dq.extend(keep)
        return count

    def close(self) -> None:
        """No more appends; everything queued becomes sendable."""
        self._closed = True
        for appender in self._fast_appenders:
            appender.enabled = False

    @property
    def closed(self) -> bool:
        return self._closed

    def queue_sizes(self, topic: str) -> dict[int, int]:
        info = self._topics.get(topic)
        return {} if info is None else {p: len(dq) for p, dq in info.batches.items()}

    def sticky_partitioner(self, topic: str) -> BuiltInPartitioner:
        info = self._topics.get(topic)
        if info is None:
            info = self._add_topic(topic)
        return info.partitioner
