"""The sender: one anyio task that moves batches from the accumulator to the brokers.

The sans-IO core decides everything (the accumulator which batches are ready and how to
drain them, :mod:`~streamclient.producer.idempotence` what a failed partition means, the
:class:`~streamclient.producer.transactions.TransactionManager` which coordinator request
comes next); this module does the I/O around it, as the Java client's ``Sender.runOnce``:

1. sequences and epochs (``maybe_resolve_sequences``, a local KIP-360 bump, or
   InitProducerId when there is no producer id yet);
2. one transactional request at a time, awaited in the loop (Java sends no produce data
   while one is in flight either);
3. ``maybe_refresh_metadata`` (the cluster layer has no background task of its own);
4. ``ready`` → ``drain`` → one ProduceRequest per node, handed to one of the node's
   worker tasks so several are in flight on one connection (the connection pipelines
   them), at most ``max_in_flight_requests_per_connection`` per node;
5. expiry of queued and in-flight batches by ``delivery_timeout_ms``;
6. sleep until the next ready-check delay, metadata deadline or expiry, or until woken by
   ``send()`` (a new or full batch), a response, a finished connect, or ``close``.

Nothing raised here reaches the application's task: a response's error goes to the
batches it concerns, and anything unexpected becomes :attr:`Sender.fatal_error`, which
fails every pending record and which the producer raises on its next call.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from streamclient.cluster import ClusterClient, ClusterMetadata, ConnectionGroup, CoordinatorType
from streamclient.errors import (
    KafkaError,
    KafkaTimeoutError,
    ProducerClosed,
    RequestTimedOutError,
    UnsupportedVersionError,
    for_code,
)
from streamclient.producer.accumulator import RecordAccumulator
from streamclient.producer.batch import NO_SEQUENCE, ProducerBatch
from streamclient.producer.config import ProducerConfig
from streamclient.producer.idempotence import Action, IdempotenceState, handle_produce_error
from streamclient.producer.transactions import TransactionManager, TransactionState, TxnRequest
from streamclient.protocol.messages.add_offsets_to_txn import AddOffsetsToTxnRequest
from streamclient.protocol.messages.add_partitions_to_txn import AddPartitionsToTxnRequest
from streamclient.protocol.messages.end_txn import EndTxnRequest
from streamclient.protocol.messages.init_producer_id import InitProducerIdRequest
from streamclient.protocol.messages.produce import ProduceRequest
from streamclient.protocol.messages.txn_offset_commit import TxnOffsetCommitRequest
from streamclient.structs import TopicPartition

if TYPE_CHECKING:
    from streamclient.net.connection import BrokerConnection

__all__ = ["MetadataView", "Sender", "monotonic_ms"]

log = logging.getLogger(__name__)

NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
NETWORK_EXCEPTION = 13
UNSUPPORTED_VERSION = 35

# Client-side caps: AddPartitionsToTxn v4+ is for brokers (KIP-890 verification) and
# EndTxn v5 / TxnOffsetCommit v5 belong to transactions v2 (KIP-890 part 2), whose
# per-transaction epoch bumps this producer does not implement.
_MAX_ADD_PARTITIONS_VERSION = 3
_MAX_END_TXN_VERSION = 4
_MAX_TXN_OFFSET_COMMIT_VERSION = 4


def monotonic_ms() -> int:
    """The producer's clock for linger, backoff and timeouts (never the wall clock)."""
    return int(time.monotonic() * 1000)


class MetadataView:
    """The accumulator's :class:`~streamclient.producer.accumulator.ClusterView` over the
    cluster layer's :class:`ClusterMetadata`.

    ``send()`` asks for a topic's partitions on every record, and ``ready()`` for every
    partition's leader on every pass; the snapshot answers with fresh sets each time, so
    this keeps sorted lists per topic and a leader map, dropped whenever the snapshot
    changes (its listener).  A partition without a leader (-1) reads as ``None``.
    """

    def __init__(self, metadata: ClusterMetadata) -> None:
        self.metadata = metadata
        self._topics: dict[str, tuple[list[int], list[int], frozenset[int]] | None] = {}
        self._all: dict[str, list[int]] = {}
        self._available: dict[str, list[int]] = {}
        self._leaders: dict[TopicPartition, int | None] = {}
        self._by_node: dict[int, list[TopicPartition]] = {}
        metadata.add_listener(self._invalidate)

    def _invalidate(self, _metadata: ClusterMetadata) -> None:
        self._topics = {}
        self._all = {}
        self._available = {}
        self._leaders = {}
        self._by_node = {}

    def topic_partitions(self, topic: str) -> tuple[list[int], list[int], frozenset[int]] | None:
        """``(all, available, set of all)`` for a known topic with partitions, else None."""
        try:
            return self._topics[topic]
        except KeyError:
            pass
        found: tuple[list[int], list[int], frozenset[int]] | None
        info = self.metadata.topic(topic)
        if info is None or not info.partitions:
            found = None
        else:
            every = sorted(info.partitions)
            available = [p for p in every if info.partitions[p].leader >= 0]
            found = (every, available, frozenset(every))
            self._all[topic] = every
            self._available[topic] = available
        self._topics[topic] = found
        return found

    def leader_for(self, tp: TopicPartition) -> int | None:
        try:
            return self._leaders[tp]
        except KeyError:
            leader = self.metadata.leader_for(tp)
            if leader is not None and leader < 0:
                leader = None
            self._leaders[tp] = leader
            return leader

    def partitions_for_node(self, node_id: int) -> Sequence[TopicPartition]:
        found = self._by_node.get(node_id)
        if found is None:
            found = self._by_node[node_id] = sorted(
                self.metadata.partitions_for_broker(node_id) or ())
        return found

    def partitions_for_topic(self, topic: str) -> Sequence[int]:
        found = self._all.get(topic)
        if found is None:
            parts = self.topic_partitions(topic)
            return () if parts is None else parts[0]
        return found

    def available_partitions_for_topic(self, topic: str) -> Sequence[int]:
        found = self._available.get(topic)
        if found is None:
            parts = self.topic_partitions(topic)
            return () if parts is None else parts[1]
        return found


class _Lane:
    """A node's queued ProduceRequests and the workers that send them."""

    __slots__ = ("idle", "jobs", "workers")

    def __init__(self) -> None:
        self.jobs: deque[tuple[BrokerConnection, ProduceRequest, list[ProducerBatch]]] = deque()
        self.idle: list[anyio.Event] = []
        self.workers = 0


class Sender:
    """The producer's background loop; run it with ``await task_group.start(sender.run)``."""

    def __init__(self, client: ClusterClient, accumulator: RecordAccumulator,
                 config: ProducerConfig, view: MetadataView, *,
                 idempotence: IdempotenceState | None = None,
                 transactions: TransactionManager | None = None) -> None:
        self.client = client
        self.accumulator = accumulator
        self.config = config
        self.view = view
        self.idempotence = idempotence
        self.transactions = transactions
        self.fatal_error: BaseException | None = None
        self._max_in_flight = config.max_in_flight_requests_per_connection
        self._in_flight: dict[int, int] = {}
        # drained batches whose request has no answer yet (insertion-ordered set), for
        # delivery_timeout_ms expiry while in flight
        self._in_flight_batches: dict[ProducerBatch, None] = {}
        # never later than the earliest delivery deadline among those batches (exact after
        # a scan, lowered by each send, left early by answers), so a pass scans them only
        # when one may have expired instead of on every pass
        self._in_flight_deadline: float = math.inf
        self._connecting: set[int] = set()
        # partition -> [node its in-flight batches went to, how many]; and the partitions
        # held back (muted) because their leader moved while batches were in flight
        self._partition_in_flight: dict[TopicPartition, list[int]] = {}
        self._held: set[TopicPartition] = set()
        self._wake: anyio.Event | None = None
        # True once _wake was set for the pass to come: send() checks this plain bool
        self.woken = False
        self._closing = False
        self._scope: anyio.CancelScope | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        # per node, the tasks that send its ProduceRequests (see _dispatch_produce)
        self._lanes: dict[int, _Lane] = {}
        self._lanes_closed = False
        self._finished: anyio.Event | None = None
        self._pid_attempts = 0
        self._pid_retry_at = 0

    # --- control (from the producer) -----------------------------------------------------

    def wakeup(self) -> None:
        """Run a pass soon.  Cheap, never checkpoints: ``send()`` calls it."""
        if not self.woken:
            wake = self._wake
            if wake is not None:
                self.woken = True
                wake.set()

    def initiate_close(self) -> None:
        """Send what is left, then stop (the accumulator is closed by the caller)."""
        self._closing = True
        self.wakeup()

    def force_close(self) -> None:
        """Stop now; pending records fail with ``ProducerClosed``."""
        self._closing = True
        if self._scope is not None:
            self._scope.cancel()

    async def wait_finished(self) -> None:
        if self._finished is not None:
            await self._finished.wait()

    @property
    def running(self) -> bool:
        return self._finished is not None and not self._finished.is_set()

    def set_fatal(self, exc: BaseException) -> None:
        """Stop producing for good: fail every pending record with ``exc``."""
        if self.fatal_error is None:
            self.fatal_error = exc
            log.error("producer stopped by a fatal error: %r", exc)
        self.accumulator.abort_incomplete(self.fatal_error)
        self.wakeup()

    # --- the loop --------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
                  ) -> None:
        self._wake = anyio.Event()
        self._finished = anyio.Event()
        self._scope = anyio.CancelScope()
        self._lanes = {}
        self._lanes_closed = False
        try:
            with self._scope:
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    task_status.started()
                    try:
                        await self._loop()
                    except Exception as exc:  # a bug here must not reach the application
                        log.exception("the producer's sender failed")
                        self.set_fatal(exc)
                    # the child tasks still finish their requests: responses or timeouts;
                    # idle lane workers leave
                    self._close_lanes()
        finally:
            self._tg = None
            if self.accumulator.has_incomplete():
                self.accumulator.abort_incomplete(
                    self.fatal_error or ProducerClosed("the producer was closed before these "
                                                       "records were acknowledged"))
            self._finished.set()

    async def _loop(self) -> None:
        while True:
            if self._wake is None or self.woken:
                self._wake = anyio.Event()
                self.woken = False
            delay_ms = await self._run_once()
            if self._closing and self._close_done():
                return
            if delay_ms <= 0:
                await anyio.lowlevel.checkpoint()
                continue
            with anyio.move_on_after(delay_ms / 1000):
                await self._wake.wait()

    def _close_done(self) -> bool:
        if self.fatal_error is not None:
            return True
        if self.accumulator.has_incomplete() or self._in_flight_batches:
            return False
        tm = self.transactions
        if tm is None:
            return True
        if tm.has_fatal_error:
            return True
        return tm.in_flight is None and next(iter(tm.queued_requests()), None) is None

    async def _run_once(self) -> float:
        acc = self.accumulator
        idem = self.idempotence
        tm = self.transactions
        delay = math.inf
        now = monotonic_ms()

        if idem is not None:
            idem.maybe_resolve_sequences()
            if idem.has_fatal_error:
                error = (tm.last_error if tm is not None else idem.fatal_error)
                self.set_fatal(error or KafkaError("the idempotent producer failed"))
                return math.inf
            if tm is None and idem.bump_epoch_and_reset_id_if_needed():
                delay = min(delay, await self._init_producer_id())
        if self.fatal_error is not None:
            return math.inf

        if tm is not None:
            if (tm.has_abortable_error or tm.state is TransactionState.ABORTING_TRANSACTION) \
                    and acc.has_undrained():
                acc.abort_undrained(tm.last_error or KafkaError("the transaction was aborted"))
            delay = min(delay, await self._transaction_step())
            if tm.has_fatal_error:
                return 0  # the next pass fails everything

        try:
            await self.client.maybe_refresh_metadata()
        except KafkaError as exc:
            log.debug("metadata refresh failed: %r", exc)
        metadata = self.view.metadata

        if idem is not None and self._partition_in_flight:
            self._hold_partitions()
        now = monotonic_ms()
        ready = acc.ready(self.view, now)
        if ready.unknown_leader_topics:
            metadata.add_topics(ready.unknown_leader_topics)
            metadata.request_update()
        sendable: list[int] = []
        for node in ready.ready_nodes:
            can_send = False
            if self.client.connection(node) is None:
                self._connect_soon(node)
            elif self._in_flight.get(node, 0) < self._max_in_flight:
                can_send = True
                sendable.append(node)
            acc.update_node_latency_stats(node, now, can_send)
        drained_any = False
        drained: dict[int, list[ProducerBatch]] = {}
        if sendable:
            drained = acc.drain(self.view, sendable, self.config.max_request_size, now)
            for node, batches in drained.items():
                conn = self.client.connection(node)
                if conn is None:  # cannot happen without an await in between; be safe
                    for batch in batches:
                        self._complete_partition(batch, NETWORK_EXCEPTION, now=now)
                    continue
                self._send_produce(node, conn, batches)
                drained_any = True

        self._expire(now)

        delay = min(delay, ready.next_ready_check_delay_ms,
                    metadata.time_to_next_update(self.client.now_ms()),
                    acc.next_expiry_ms() - now, self._next_in_flight_expiry() - now)
        if drained_any:
            # more may be ready behind what went out: go again at once if a node can
            # take another request; one at its cap is woken by a response
            in_flight = self._in_flight
            cap = self._max_in_flight
            if any(in_flight.get(node, 0) < cap for node in drained):
                return 0
        if ready.ready_nodes:
            # ready but gated (in-flight cap, idempotence order, a partition not yet in
            # the transaction, a connect under way): a response or a connect wakes us,
            # and the backoff bounds the wait in case nothing does
            delay = min(delay, max(self.config.retry_backoff_ms, 1))
        return max(delay, 0)

    # --- producing -------------------------------------------------------------------------

    def _hold_partitions(self) -> None:
        """Hold back (mute) a partition with batches in flight, until they are answered,
        when sending more could let the broker write batches out of order:

        * until the broker acknowledged a first batch of this producer id and epoch on
          the partition, it may hold no state for us there, and then it accepts any
          first sequence (KIP-360, for state lost to retention).  A pipelined later
          batch could be written while the first is refused for a transient reason, and
          the first one's retry would then look like a gap: an epoch bump, duplicates.
          So the first batch goes alone;
        * when the leader moved while batches are in flight to the old one, a new batch
          must not reach the new leader before they are answered and retried in order.
        """
        idem = self.idempotence
        assert idem is not None
        leader_for = self.view.leader_for
        held = self._held
        for tp, (node, _count) in self._partition_in_flight.items():
            if tp not in held and (idem.last_acked_sequence(tp) == NO_SEQUENCE
                                   or leader_for(tp) != node):
                held.add(tp)
                self.accumulator.mute(tp)

    def _connect_soon(self, node: int) -> None:
        if node in self._connecting or self._tg is None:
            return
        self._connecting.add(node)
        self._tg.start_soon(self._connect, node)

    async def _connect(self, node: int) -> None:
        try:
            await self.client.version_for(node, ProduceRequest)
        except KafkaError as exc:
            # the pool backs off reconnects; the batches wait (or expire) meanwhile
            log.debug("cannot connect to node %s: %r", node, exc)
        except Exception:
            log.exception("connecting to node %s failed", node)
        finally:
            self._connecting.discard(node)
            self.wakeup()

    def _send_produce(self, node: int, conn: BrokerConnection,
                      batches: list[ProducerBatch]) -> None:
        PartitionData = ProduceRequest.TopicProduceData.PartitionProduceData
        topics: dict[str, list[ProduceRequest.TopicProduceData.PartitionProduceData]] = {}
        in_flight = self._partition_in_flight
        in_flight_batches = self._in_flight_batches
        earliest = self._in_flight_deadline
        timeout = self.config.delivery_timeout
        for batch in batches:
            in_flight_batches[batch] = None
            deadline = batch.created_ms + timeout
            if deadline < earliest:
                earliest = deadline
            tp = batch.topic_partition
            entry = in_flight.get(tp)
            if entry is None:
                in_flight[tp] = [node, 1]
            else:
                entry[0] = node
                entry[1] += 1
            parts = topics.get(tp.topic)
            if parts is None:
                parts = topics[tp.topic] = []
            parts.append(PartitionData(index=tp.partition, records=batch.build()))
        self._in_flight_deadline = earliest
        config = self.config
        request = ProduceRequest(
            transactional_id=config.transactional_id, acks=config.acks,
            timeout_ms=config.request_timeout_ms,
            topic_data=[ProduceRequest.TopicProduceData(name=name, partition_data=parts)
                        for name, parts in topics.items()])
        self._in_flight[node] = self._in_flight.get(node, 0) + 1
        self._dispatch_produce(node, conn, request, batches)

    def _dispatch_produce(self, node: int, conn: BrokerConnection, request: ProduceRequest,
                          batches: list[ProducerBatch]) -> None:
        """Hand the request to one of the node's workers, starting one only when none is
        idle (at most ``max_in_flight_requests_per_connection`` per node).

        A task per request would cost a task start each time; a worker that is done
        waits for the next request instead.  Requests reach the wire in drain order: a
        node's requests wait in one FIFO, and a worker takes one and, before its first
        yield, the connection's write lock (which is fair).
        """
        lane = self._lanes.get(node)
        if lane is None:
            lane = self._lanes[node] = _Lane()
        lane.jobs.append((conn, request, batches))
        if lane.idle:
            lane.idle.pop().set()
        elif lane.workers < self._max_in_flight:
            # otherwise every worker is busy with a request whose answer was read, and
            # takes this one before it yields (the in-flight cap counts queued requests)
            assert self._tg is not None
            lane.workers += 1
            self._tg.start_soon(self._lane_worker, node, lane)

    async def _lane_worker(self, node: int, lane: _Lane) -> None:
        try:
            while True:
                if lane.jobs:
                    conn, request, batches = lane.jobs.popleft()
                    await self._produce(node, conn, request, batches)
                    continue
                if self._lanes_closed:
                    return
                wake = anyio.Event()
                lane.idle.append(wake)
                try:
                    await wake.wait()
                finally:
                    if wake in lane.idle:
                        lane.idle.remove(wake)
        finally:
            lane.workers -= 1

    def _close_lanes(self) -> None:
        self._lanes_closed = True
        for lane in self._lanes.values():
            idle, lane.idle = lane.idle, []
            for wake in idle:
                wake.set()

    async def _produce(self, node: int, conn: BrokerConnection, request: ProduceRequest,
                       batches: list[ProducerBatch]) -> None:
        try:
            try:
                response = await conn.send(request)
            except KafkaError as exc:
                if conn.closed:
                    self.view.metadata.request_update()
                self._fail_request(batches, exc)
                return
            if response is None:  # acks=0: written is all we will ever know
                for batch in batches:
                    self.accumulator.complete_batch(batch, -1, no_ack=True)
                return
            self._handle_response(response, batches)
        except Exception as exc:
            log.exception("handling a produce response from node %s failed", node)
            for batch in batches:
                if not batch.is_done:
                    self.accumulator.fail_batch(batch, exc)
        finally:
            self._in_flight[node] -= 1
            in_flight = self._partition_in_flight
            in_flight_batches = self._in_flight_batches
            for batch in batches:
                in_flight_batches.pop(batch, None)
                tp = batch.topic_partition
                entry = in_flight.get(tp)
                if entry is not None:
                    entry[1] -= 1
                    if entry[1] <= 0:
                        del in_flight[tp]
                        if tp in self._held:
                            self._held.discard(tp)
                            self.accumulator.unmute(tp)
            if not in_flight_batches:
                self._in_flight_deadline = math.inf
            self.wakeup()

    def _fail_request(self, batches: list[ProducerBatch], exc: KafkaError) -> None:
        """No answer for the whole request: each batch decides as for Kafka's code."""
        if isinstance(exc, UnsupportedVersionError):
            code = UNSUPPORTED_VERSION
        elif isinstance(exc, RequestTimedOutError):
            code = REQUEST_TIMED_OUT
        else:
            code = NETWORK_EXCEPTION
        log.debug("produce request failed (%r): %d batch(es) get error %d", exc,
                  len(batches), code)
        now = monotonic_ms()
        for batch in batches:
            self._complete_partition(batch, code, message=str(exc), now=now)

    def _handle_response(self, response: Any, batches: list[ProducerBatch]) -> None:
        by_tp = {batch.topic_partition: batch for batch in batches}
        now = monotonic_ms()
        hints: dict[TopicPartition, tuple[int, int]] = {}
        for topic in response.responses:
            name = topic.name
            for part in topic.partition_responses:
                batch = by_tp.pop(TopicPartition(name, part.index), None)
                if batch is None:
                    continue
                code = part.error_code
                if code == NOT_LEADER_OR_FOLLOWER:
                    leader = part.current_leader
                    if leader is not None and leader.leader_id >= 0:
                        hints[batch.topic_partition] = (leader.leader_id, leader.leader_epoch)
                message = part.error_message
                if code and part.record_errors:
                    details = "; ".join(f"record {e.batch_index}: {e.batch_index_error_message}"
                                        for e in part.record_errors)
                    message = f"{message or ''} ({details})"
                self._complete_partition(batch, code, part.base_offset,
                                         part.log_append_time_ms, part.log_start_offset,
                                         message, now=now)
        if hints:
            # KIP-951: go to the new leader at once; the full refresh still follows
            self.view.metadata.update_partition_leaders(
                hints, getattr(response, "node_endpoints", ()) or ())
        for batch in by_tp.values():
            # the broker left a partition out of its answer; treat it as lost
            self._complete_partition(batch, NETWORK_EXCEPTION,
                                     message="partition missing from the response", now=now)

    def _complete_partition(self, batch: ProducerBatch, code: int, base_offset: int = -1,
                            log_append_time: int = -1, log_start_offset: int = -1,
                            message: str | None = None, *, now: int) -> None:
        acc = self.accumulator
        if code == 0:
            acc.complete_batch(batch, base_offset, log_append_time, log_start_offset)
            return
        idem = self.idempotence
        if idem is not None:
            decision = idem.handle_produce_error(batch, code, log_start_offset, now, message)
        else:
            decision = handle_produce_error(
                batch, code, log_start_offset, now, retries=self.config.retries,
                delivery_timeout_ms=self.config.delivery_timeout, error_message=message)
        if decision.refresh_metadata or code in (NETWORK_EXCEPTION, REQUEST_TIMED_OUT):
            self.view.metadata.request_update()
        action = decision.action
        if action is Action.RETRY:
            log.debug("retrying %r after error %d", batch, code)
            acc.reenqueue(batch, now)
        elif action is Action.SPLIT:
            acc.split_and_reenqueue(batch)
        elif action is Action.COMPLETE:
            acc.complete_batch(batch, -1, -1, log_start_offset)
        else:
            error = decision.error or for_code(code)(message)
            if for_code(code).kafka_retriable and batch.has_reached_delivery_timeout(
                    self.config.delivery_timeout, now):
                # it would have been retried but for delivery_timeout_ms: that is the
                # reason the application should see (the broker's error is the cause)
                timeout = KafkaTimeoutError(
                    f"{batch.record_count} record(s) for {batch.topic_partition} not "
                    f"delivered within delivery_timeout_ms={self.config.delivery_timeout}; "
                    f"last error: {error!r}")
                timeout.__cause__ = error
                error = timeout
            acc.fail_batch(batch, error, decision.adjust_sequences)

    def _expire(self, now: int) -> None:
        acc = self.accumulator
        acc.fail_expired_batches(now)
        if now < self._in_flight_deadline:
            return
        timeout = self.config.delivery_timeout
        earliest = math.inf
        for batch in list(self._in_flight_batches):
            if batch.is_done:
                continue
            if batch.has_reached_delivery_timeout(timeout, now):
                acc.expire_batch(batch, now)
            elif batch.created_ms + timeout < earliest:
                earliest = batch.created_ms + timeout
        self._in_flight_deadline = earliest

    def _next_in_flight_expiry(self) -> float:
        return self._in_flight_deadline

    # --- producer id (idempotent, not transactional) -----------------------------------

    async def _init_producer_id(self) -> float:
        """InitProducerId without a transactional id; returns how long until a retry."""
        idem = self.idempotence
        assert idem is not None
        now = monotonic_ms()
        if now < self._pid_retry_at:
            return self._pid_retry_at - now
        request = InitProducerIdRequest(
            transactional_id=None, transaction_timeout_ms=self.config.transaction_timeout_ms)
        try:
            # the negotiated version is the highest both sides have: Tansu's v0-2 fail
            response = await self.client.send_to_any(request)
        except KafkaError as exc:
            if isinstance(exc, UnsupportedVersionError):
                self.set_fatal(exc)
                return math.inf
            log.debug("InitProducerId failed: %r", exc)
            return self._pid_backoff()
        code = response.error_code
        if code == 0:
            idem.set_producer_id_and_epoch(response.producer_id, response.producer_epoch)
            self._pid_attempts = 0
            return 0
        error = for_code(code)
        if error.kafka_retriable:
            log.debug("InitProducerId answered %s; retrying", error.__name__)
            return self._pid_backoff()
        self.set_fatal(error("InitProducerId failed"))
        return math.inf

    def _pid_backoff(self) -> float:
        backoff = self.accumulator.retry_backoff_ms(self._pid_attempts)
        self._pid_attempts += 1
        self._pid_retry_at = monotonic_ms() + int(backoff)
        return backoff

    # --- transactions ------------------------------------------------------------------------

    async def _transaction_step(self) -> float:
        """Send the transaction manager's next request, if any; returns the time until one
        may be due."""
        tm = self.transactions
        assert tm is not None
        now = monotonic_ms()
        request = tm.next_request(now, self.accumulator.has_incomplete())
        if request is None:
            queued = next(iter(tm.queued_requests()), None)
            if queued is None or tm.in_flight is not None:
                return math.inf
            if queued.api == "EndTxn" and self.accumulator.has_incomplete():
                return math.inf  # a response wakes us
            return max(queued.not_before_ms - now, 0)
        await self._send_txn_request(tm, request)
        return 0

    async def _send_txn_request(self, tm: TransactionManager, request: TxnRequest) -> None:
        api = request.api
        kind = (CoordinatorType.TRANSACTION if request.coordinator == "transaction"
                else CoordinatorType.GROUP)
        try:
            if api == "FindCoordinator":
                # the manager asks only when it has none or lost it: never use a stale one
                self.client.invalidate_coordinator(request.coordinator_key, kind)
                try:
                    node = await self.client.coordinator(request.coordinator_key, kind)
                except KafkaError as exc:
                    errno = getattr(exc, "errno", None)
                    if isinstance(errno, int) and errno > 0:
                        tm.handle_find_coordinator(request, errno, -1, monotonic_ms())
                        return
                    raise
                tm.handle_find_coordinator(request, 0, node, monotonic_ms())
                return
            coordinator = tm.coordinator_for(request)
            assert coordinator is not None  # next_request returns only routable requests
            message, version = await self._txn_message(coordinator, request)
            response = await self.client.send(coordinator, message, version,
                                              group=ConnectionGroup.COORDINATION)
        except UnsupportedVersionError as exc:
            tm.in_flight = None
            tm.transition_to_fatal_error(exc)
            if request.result is not None:
                request.result.done(exc)
            return
        except KafkaError as exc:
            log.debug("%s failed: %r", api, exc)
            self.client.invalidate_coordinator(request.coordinator_key, kind)
            tm.handle_request_failure(request, monotonic_ms())
            return
        now = monotonic_ms()
        if api == "InitProducerId":
            tm.handle_init_producer_id(request, response.error_code, response.producer_id,
                                       response.producer_epoch, now)
        elif api == "AddPartitionsToTxn":
            results = {TopicPartition(t.name, p.partition_index): p.partition_error_code
                       for t in response.results_by_topic_v3_and_below
                       for p in t.results_by_partition}
            tm.handle_add_partitions(request, results, now)
        elif api == "AddOffsetsToTxn":
            tm.handle_add_offsets(request, response.error_code, now)
        elif api == "TxnOffsetCommit":
            results = {TopicPartition(t.name, p.partition_index): p.error_code
                       for t in response.topics for p in t.partitions}
            tm.handle_txn_offset_commit(request, results, now)
        elif api == "EndTxn":
            tm.handle_end_txn(request, response.error_code, now)
        else:  # pragma: no cover - the manager has no other requests
            raise KafkaError(f"unknown transactional request {api!r}")

    async def _txn_message(self, node: int, request: TxnRequest) -> tuple[Any, int]:
        fields = {k: v for k, v in request.fields.items() if not k.startswith("_")}
        api = request.api
        client = self.client
        if api == "InitProducerId":
            version = await client.version_for(node, InitProducerIdRequest)
            idem = self.idempotence
            if idem is not None:
                # KIP-360: only v3+ lets a transactional producer bump its own epoch
                idem.coordinator_supports_epoch_bump = version >= 3
            if version < 3:
                fields.pop("producer_id", None)
                fields.pop("producer_epoch", None)
            return InitProducerIdRequest(**fields), version
        if api == "AddPartitionsToTxn":
            version = min(await client.version_for(node, AddPartitionsToTxnRequest),
                          _MAX_ADD_PARTITIONS_VERSION)
            topics = [AddPartitionsToTxnRequest.AddPartitionsToTxnTopic(name=t, partitions=ps)
                      for t, ps in fields["topics"].items()]
            return AddPartitionsToTxnRequest(
                v3_and_below_transactional_id=fields["transactional_id"],
                v3_and_below_producer_id=fields["producer_id"],
                v3_and_below_producer_epoch=fields["producer_epoch"],
                v3_and_below_topics=topics), version
        if api == "AddOffsetsToTxn":
            return (AddOffsetsToTxnRequest(**fields),
                    await client.version_for(node, AddOffsetsToTxnRequest))
        if api == "TxnOffsetCommit":
            version = min(await client.version_for(node, TxnOffsetCommitRequest),
                          _MAX_TXN_OFFSET_COMMIT_VERSION)
            topic_cls = TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic
            part_cls = topic_cls.TxnOffsetCommitRequestPartition
            fields["topics"] = [
                topic_cls(name=name, partitions=[
                    part_cls(partition_index=p, committed_offset=offset,
                             committed_metadata=meta) for p, offset, meta in parts])
                for name, parts in fields["topics"].items()]
            if version < 3:
                # before KIP-447 the coordinator cannot fence by generation
                for key in ("generation_id", "member_id", "group_instance_id"):
                    fields.pop(key, None)
            return TxnOffsetCommitRequest(**fields), version
        if api == "EndTxn":
            version = min(await client.version_for(node, EndTxnRequest), _MAX_END_TXN_VERSION)
            return EndTxnRequest(**fields), version
        raise KafkaError(f"unknown transactional request {api!r}")
