"""``AIOKafkaProducer``: aiokafka's producer API on anyio (asyncio or trio).

``send()`` is the hot path: serialize, choose a partition, append to the
:class:`~streamclient.producer.accumulator.RecordAccumulator` (plain Python), and return
a :class:`RecordFuture`.  It awaits nothing while the topic's metadata is known and the
buffer has room, so a burst of ``await producer.send(...)`` costs no checkpoint per
record; the :class:`~streamclient.producer.sender.Sender` runs when the application
yields.  Awaiting the returned future waits on one event per batch, created only when
somebody waits.

Lifecycle (structured concurrency): ``start()`` enters a task group that holds the
sender, ``stop()`` leaves it, from the same task (``async with producer:`` does both).
The sender never raises into the application: a fatal error fails the pending records
and is raised by the next call.
"""

from __future__ import annotations

import itertools
import logging
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, NamedTuple

import anyio
import anyio.abc

from streamclient.cluster import ClusterClient, ClusterConfig
from streamclient.errors import (
    IllegalArgumentError,
    IllegalOperation,
    IllegalStateError,
    KafkaError,
    KafkaTimeoutError,
    ProducerClosed,
)
from streamclient.producer.accumulator import RecordAccumulator
from streamclient.producer.config import ProducerConfig
from streamclient.producer.idempotence import IdempotenceState
from streamclient.producer.partitioner import (
    UNKNOWN_PARTITION,
    DefaultPartitioner,
    Partitioner,
    check_partition,
)
from streamclient.producer.result import FutureRecordMetadata, ProduceRequestResult
from streamclient.producer.sender import MetadataView, Sender, monotonic_ms
from streamclient.producer.transaction_context import TransactionContext
from streamclient.producer.transactions import (
    ConsumerGroupMetadata,
    TransactionalRequestResult,
    TransactionManager,
    TransactionState,
)
from streamclient.protocol.records import RecordBatchBuilder
from streamclient.structs import OffsetAndMetadata, RecordMetadata, TopicPartition

__all__ = ["AIOKafkaProducer", "BatchBuilder", "BatchRecordMetadata", "RecordFuture"]

log = logging.getLogger(__name__)

_NEW, _STARTED, _STOPPING, _STOPPED = "new", "started", "stopping", "stopped"
_IN_TRANSACTION = TransactionState.IN_TRANSACTION
_BYTES_TYPES = (bytes, bytearray, memoryview)
_client_ids = itertools.count(1)
_time_ns = time.time_ns
_monotonic = time.monotonic


class RecordFuture(FutureRecordMetadata):
    """What ``send()`` returns: awaitable, and shaped like the ``asyncio.Future`` aiokafka
    returns (``done``, ``result``, ``exception``, ``add_done_callback``) on any backend.

    It resolves to :class:`~streamclient.structs.RecordMetadata`, or ``None`` with
    ``acks=0``.  Cancelling an ``await`` on it does not cancel the send.  It is the
    accumulator's per-record handle itself (one object per record, not a wrapper).
    """

    __slots__ = ()

    def __await__(self) -> Any:
        if not self.done():
            yield from _wait_handle(self).__await__()
        return self._value()

    def _value(self) -> RecordMetadata | None:
        metadata = self.value()
        return None if self.request_result.no_ack else metadata

    def cancelled(self) -> bool:
        return False

    def cancel(self) -> bool:
        """Records cannot be taken back once sent (as in aiokafka): always ``False``."""
        return False

    def result(self) -> RecordMetadata | None:
        if not self.done():
            raise IllegalStateError("the record has not been acknowledged yet")
        return self._value()

    def exception(self) -> BaseException | None:
        if not self.done():
            raise IllegalStateError("the record has not been acknowledged yet")
        return super().exception()

    def __repr__(self) -> str:
        state = "pending" if not self.done() else (
            f"error={super().exception()!r}" if super().exception() else "done")
        return f"RecordFuture({self.topic_partition}, {state})"


# One anyio event per batch result somebody awaits, made lazily.  A result belongs to one
# producer and so to one event loop; entries leave when the result completes.
_result_events: dict[ProduceRequestResult, anyio.Event] = {}


def _result_event(result: ProduceRequestResult) -> anyio.Event:
    event = _result_events.get(result)
    if event is None:
        event = _result_events[result] = anyio.Event()
        result.add_done_callback(_on_result_done)
    return event


def _on_result_done(result: ProduceRequestResult) -> None:
    event = _result_events.pop(result, None)
    if event is not None:
        event.set()


async def _wait_handle(handle: FutureRecordMetadata) -> None:
    # a split chains the handle to a new batch: wait until the last one is done
    while not handle.done():
        await _result_event(handle.request_result).wait()


class BatchRecordMetadata(NamedTuple):
    """What :meth:`BatchBuilder.append` returns (aiokafka's record metadata shape)."""

    offset: int
    size: int
    timestamp: int
    crc: None = None


class BatchBuilder:
    """aiokafka's ``BatchBuilder``: records for one partition, sent together with
    :meth:`AIOKafkaProducer.send_batch`.  Made by :meth:`AIOKafkaProducer.create_batch`
    (which applies the producer's serializers, compression and batch size)."""

    def __init__(self, builder: RecordBatchBuilder,
                 key_serializer: Callable[[Any], Any] | None,
                 value_serializer: Callable[[Any], Any] | None) -> None:
        self._builder = builder
        self._key_serializer = key_serializer
        self._value_serializer = value_serializer
        self._closed = False

    def append(self, *, timestamp: int | None, key: Any, value: Any,
               headers: Iterable[tuple[str, bytes | None]] = ()) -> BatchRecordMetadata | None:
        """Add a record (``timestamp`` in ms, ``None`` for now); ``None`` if the batch is
        full or closed."""
        if self._closed:
            return None
        if self._key_serializer is not None:
            key = self._key_serializer(key)
        if self._value_serializer is not None:
            value = self._value_serializer(value)
        _check_bytes("key", key)
        _check_bytes("value", value)
        if timestamp is None:
            timestamp = _time_ns() // 1_000_000
        header_list = tuple(headers) if headers else ()
        before = self._builder.estimated_size
        offset = self._builder.append(timestamp, key, value, header_list)
        if offset is None:
            return None
        return BatchRecordMetadata(offset, self._builder.estimated_size - before, timestamp)

    def close(self) -> None:
        self._closed = True

    def closed(self) -> bool:
        return self._closed

    def size(self) -> int:
        return self._builder.estimated_size

    def record_count(self) -> int:
        return self._builder.record_count


def _check_bytes(what: str, data: Any) -> None:
    if data is not None and not isinstance(data, _BYTES_TYPES):
        raise TypeError(f"the record's {what} must be bytes or None after serialization, "
                        f"not {type(data).__name__} (set {what}_serializer?)")


class AIOKafkaProducer:
    """A Kafka producer with aiokafka's API (keyword arguments: see
    :class:`~streamclient.producer.config.ProducerConfig` and ``docs/producer.md``).

    Unlike aiokafka it needs no running event loop to be constructed, and runs on
    asyncio or trio.
    """

    # The blocking KafkaProducer (streamclient.sync) appends from the application's
    # thread, so it substitutes an accumulator whose methods hold a lock.
    _accumulator_class: type[RecordAccumulator] = RecordAccumulator
    # what send() returns is the accumulator's per-record handle
    _handle_class: type[FutureRecordMetadata] = RecordFuture

    def __init__(self, *, loop: object = None, **configs: Any) -> None:
        if loop is not None:
            warnings.warn("The loop argument is deprecated since 0.7.1 and ignored",
                          DeprecationWarning, stacklevel=2)
        if configs.get("client_id") is None:
            configs["client_id"] = f"streamclient-producer-{next(_client_ids)}"
        config = ProducerConfig.from_kwargs(**configs)
        self._config = config
        self.client = ClusterClient(ClusterConfig.from_settings(config))
        idempotence: IdempotenceState | None = None
        self._txn: TransactionManager | None = None
        if config.idempotent:
            idempotence = IdempotenceState(retries=config.retries,
                                           delivery_timeout_ms=config.delivery_timeout)
            if config.transactional_id is not None:
                self._txn = TransactionManager(
                    config.transactional_id, config.transaction_timeout_ms, idempotence,
                    retry_backoff_ms=config.retry_backoff_ms)
        self._idempotence = idempotence
        self._accumulator = self._accumulator_class(config, idempotence=idempotence,
                                                    transactions=self._txn,
                                                    handle_class=self._handle_class)
        self._accumulator.on_memory_freed = self._on_memory_freed
        self._view = MetadataView(self.client.metadata)
        self._sender = Sender(self.client, self._accumulator, config, self._view,
                              idempotence=idempotence, transactions=self._txn)
        self._key_serializer = config.key_serializer
        self._value_serializer = config.value_serializer
        partitioner: Partitioner = config.partitioner
        self._partitioner = partitioner
        # Java's built-in path: the default partitioner hashes keys and leaves keyless
        # records to the accumulator, and never wants on_new_batch (KIP-480) calls
        self._default_partitioner = type(partitioner) is DefaultPartitioner
        self._ignore_keys = config.partitioner_ignore_keys
        self._abort_on_new_batch = (
            type(partitioner).on_new_batch is not Partitioner.on_new_batch)
        self._max_block_ms = config.max_block_ms
        # send()'s common case in one call (see producer/fastpath.py): records that the
        # default partitioner leaves to the sticky partition, without serializers or a
        # transaction; the blocking facade's locked accumulator goes the general way
        self._fast_eligible = (self._default_partitioner and self._key_serializer is None
                               and self._value_serializer is None and self._txn is None)
        self._fast_append: Callable[..., FutureRecordMetadata | None] | None = None
        if self._fast_eligible and type(self._accumulator) is RecordAccumulator:
            self._fast_append = self._accumulator.fast_appender(self._view).append
        self._state = _NEW
        self._owner: int | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._stopped: anyio.Event | None = None
        self._memory_event: anyio.Event | None = None
        self._init_result: TransactionalRequestResult | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (bootstrap) and start the sender.  A transactional producer begins
        initialising its producer id here; ``begin_transaction()`` waits for it."""
        if self._state != _NEW:
            raise IllegalStateError(f"start() called on a {self._state} producer")
        self._owner = anyio.get_current_task().id
        await self.client.start()  # raises KafkaConnectionError; start() may be retried
        group = anyio.create_task_group()
        await group.__aenter__()
        try:
            await group.start(self._sender.run)
        except BaseException as exc:
            self._sender.force_close()
            try:
                # the group is left as if the exception had propagated out of it
                if not await group.__aexit__(type(exc), exc, exc.__traceback__):
                    raise
            finally:
                with anyio.CancelScope(shield=True):
                    await self.client.close()
            return
        self._task_group = group
        self._stopped = anyio.Event()
        self._state = _STARTED
        if self._txn is not None:
            self._init_result = self._txn.initialize_transactions()
            self._sender.wakeup()

    async def stop(self) -> None:
        """Deliver what was sent (flush), then close.  Idempotent.  Must run in the task
        that called ``start()``: the sender's task group is left here."""
        if self._state == _NEW:
            self._state = _STOPPED
            return
        if self._state == _STOPPED:
            return
        if self._state == _STOPPING:
            assert self._stopped is not None
            await self._stopped.wait()
            return
        if anyio.get_current_task().id != self._owner:
            raise IllegalStateError(
                "stop() must be called from the task that called start(): the producer's "
                "task group was entered there (use `async with producer:` to pair them)")
        self._state = _STOPPING
        sender = self._sender
        group, self._task_group = self._task_group, None
        assert group is not None
        try:
            try:
                await self._close_gracefully()
            except BaseException as exc:
                sender.force_close()
                # leave the group as if the exception had propagated out of it (the
                # group's scope encloses this task's code since start())
                if not await group.__aexit__(type(exc), exc, exc.__traceback__):
                    raise
            else:
                await group.__aexit__(None, None, None)
        finally:
            with anyio.CancelScope(shield=True):
                await self.client.close()
            self._state = _STOPPED
            if self._stopped is not None:
                self._stopped.set()

    async def _close_gracefully(self) -> None:
        sender = self._sender
        tm = self._txn
        if (tm is not None and sender.fatal_error is None and tm.is_in_transaction
                and not tm.has_fatal_error and not tm.is_completing):
            # as the Java client does on close: an open transaction would otherwise
            # hold read_committed consumers back until its timeout
            try:
                await self._wait_txn(tm.begin_abort(), "abort the open transaction")
            except KafkaError as exc:
                log.warning("aborting the open transaction on stop failed: %r", exc)
        self._accumulator.close()
        sender.initiate_close()
        # records give up by delivery_timeout_ms anyway; a coordinator request that
        # keeps failing (the transaction manager retries forever) must not hang stop()
        with anyio.move_on_after(self._config.delivery_timeout / 1000):
            await sender.wait_finished()
        if sender.running:
            log.warning("the producer did not finish within delivery_timeout_ms on stop: "
                        "pending records fail with ProducerClosed")
            sender.force_close()
            await sender.wait_finished()

    async def __aenter__(self) -> AIOKafkaProducer:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    def _not_started(self) -> KafkaError:
        if self._state == _NEW:
            return IllegalStateError("the producer is not started: call start() first")
        return ProducerClosed("the producer is closed")

    # --- sending ---------------------------------------------------------------------------

    async def send(self, topic: str, value: Any = None, key: Any = None,
                   partition: int | None = None, timestamp_ms: int | None = None,
                   headers: Iterable[tuple[str, bytes | None]] | None = None) -> RecordFuture:
        """Queue a record; the result resolves to its ``RecordMetadata`` once the broker
        acknowledged it (``None`` with ``acks=0``).

        Returns at once while the topic's metadata is known and the buffer has room.
        Waits up to ``max_block_ms`` for metadata or memory, then raises
        ``KafkaTimeoutError``.  Raises ``MessageSizeTooLargeError`` for a record larger
        than ``max_request_size`` or ``buffer_memory``, and ``IllegalOperation`` on a
        transactional producer outside a transaction.
        """
        if self._state is not _STARTED:
            raise self._not_started()
        sender = self._sender
        if sender.fatal_error is not None:
            raise sender.fatal_error
        fast = self._fast_append
        if fast is not None and key is None and partition is None and headers is None:
            handle = fast(topic, timestamp_ms, None, value, sender.woken)
            if handle is not None:
                return handle  # type: ignore[return-value]  # a RecordFuture: _handle_class
        key, value = self._serialize(key, value)
        tm = self._txn
        if tm is not None and tm.state is not _IN_TRANSACTION:
            self._txn_send_error(tm)
        deadline = 0
        parts = self._view.topic_partitions(topic)
        if parts is None:
            deadline = monotonic_ms() + self._max_block_ms
            parts = await self._wait_for_topic(topic, deadline)
        abort = False
        if partition is None:
            partition, abort = self._choose_partition(topic, key, value, parts)
        elif partition not in parts[2]:
            parts = await self._check_partition(topic, partition)
        if timestamp_ms is None:
            timestamp_ms = _time_ns() // 1_000_000
        header_list = tuple(headers) if headers else ()
        acc = self._accumulator
        view = self._view
        now = int(_monotonic() * 1000)  # monotonic_ms(), without a call per record
        # unpacked at once: four attribute reads of the NamedTuple cost more
        future, full, new_batch, abort_for_new_batch, would_block, chosen = acc.append(
            topic, partition, timestamp_ms, key, value, header_list, view, now, abort)
        if abort_for_new_batch:
            partition = self._partition_after_new_batch(topic, key, value, parts, chosen)
            future, full, new_batch, _, would_block, chosen = acc.append(
                topic, partition, timestamp_ms, key, value, header_list, view, now)
        if would_block:
            if not deadline:
                deadline = now + self._max_block_ms
            future, full, new_batch, _, _, chosen = await self._append_when_memory(
                deadline, topic, partition, timestamp_ms, key, value, header_list)
        if full or new_batch:
            if not sender.woken:
                sender.wakeup()
            if tm is not None and new_batch:
                # a transaction's first record for a partition always opens a batch (the
                # previous transaction's batches were all completed before it ended)
                tm.maybe_add_partition(TopicPartition(topic, chosen))
        assert future is not None
        return future  # type: ignore[return-value]  # a RecordFuture: _handle_class

    # --- the parts of send() the blocking KafkaProducer shares -------------------------
    # Plain methods, not inlined, so the two send() paths cannot drift apart; each costs
    # one call per record.

    def _serialize(self, key: Any, value: Any) -> tuple[bytes | None, bytes | None]:
        """Serialized key and value, checked to be bytes, not both None."""
        if self._key_serializer is not None:
            key = self._key_serializer(key)
        if self._value_serializer is not None:
            value = self._value_serializer(value)
        if value.__class__ is not bytes and value is not None:
            _check_bytes("value", value)
        if key is None:
            if value is None:
                raise IllegalArgumentError("Need at least one: key or value")
        elif key.__class__ is not bytes:
            _check_bytes("key", key)
        return key, value

    def _choose_partition(self, topic: str, key: bytes | None, value: bytes | None,
                          parts: tuple[list[int], list[int], frozenset[int]]
                          ) -> tuple[int, bool]:
        """The partition for a record sent without one, and whether the accumulator
        should report a new batch back (KIP-480's ``on_new_batch``, custom partitioners
        only); ``UNKNOWN_PARTITION`` leaves the choice to the KIP-794 sticky logic."""
        all_partitions, available, _ = parts
        if self._default_partitioner:
            if key is None or self._ignore_keys:
                return UNKNOWN_PARTITION, False
            return self._partitioner.partition(topic, key, value, all_partitions,
                                               available), False
        partition = check_partition(topic, self._partitioner.partition(
            topic, None if self._ignore_keys else key, value, all_partitions, available),
            all_partitions)
        return partition, self._abort_on_new_batch and partition != UNKNOWN_PARTITION

    def _partition_after_new_batch(self, topic: str, key: bytes | None, value: bytes | None,
                                   parts: tuple[list[int], list[int], frozenset[int]],
                                   previous: int) -> int:
        """Tell the partitioner a batch was completed, and partition the record again."""
        all_partitions, available, _ = parts
        self._partitioner.on_new_batch(topic, all_partitions, available, previous)
        return check_partition(topic, self._partitioner.partition(
            topic, None if self._ignore_keys else key, value, all_partitions, available),
            all_partitions)

    async def send_and_wait(self, topic: str, value: Any = None, key: Any = None,
                            partition: int | None = None, timestamp_ms: int | None = None,
                            headers: Iterable[tuple[str, bytes | None]] | None = None
                            ) -> RecordMetadata | None:
        """``send()`` and wait for the acknowledgement."""
        future = await self.send(topic, value, key, partition, timestamp_ms, headers)
        return await future

    def create_batch(self) -> BatchBuilder:
        """An empty :class:`BatchBuilder` with this producer's settings."""
        config = self._config
        return BatchBuilder(
            RecordBatchBuilder(config.compression, config.transactional,
                               batch_size=config.max_batch_size,
                               compression_level=config.compression_level),
            self._key_serializer, self._value_serializer)

    async def send_batch(self, batch: BatchBuilder, topic: str, *,
                         partition: int) -> RecordFuture:
        """Send a batch from :meth:`create_batch` to one partition; the result resolves to
        the metadata of its first record (the batch's base offset)."""
        if self._state is not _STARTED:
            raise self._not_started()
        if self._sender.fatal_error is not None:
            raise self._sender.fatal_error
        tm = self._txn
        if tm is not None and tm.state is not _IN_TRANSACTION:
            self._txn_send_error(tm)
        deadline = monotonic_ms() + self._max_block_ms
        parts = self._view.topic_partitions(topic)
        if parts is None:
            parts = await self._wait_for_topic(topic, deadline)
        if partition not in parts[2]:
            await self._check_partition(topic, partition)
        batch.close()
        tp = TopicPartition(topic, partition)
        handle = self._accumulator.append_batch(tp, batch._builder, monotonic_ms())
        while handle is None:
            await self._wait_memory(deadline)
            handle = self._accumulator.append_batch(tp, batch._builder, monotonic_ms())
        if tm is not None:
            tm.maybe_add_partition(tp)
        self._sender.wakeup()
        return handle  # type: ignore[return-value]  # a RecordFuture: _handle_class

    async def flush(self) -> None:
        """Wait until every record sent so far is acknowledged (or failed)."""
        if self._state not in (_STARTED, _STOPPING):
            raise self._not_started()
        acc = self._accumulator
        acc.begin_flush()
        self._sender.wakeup()
        try:
            # a split replaces batches with new ones: loop until none is left
            while acc.has_incomplete():
                for result in acc.incomplete_results():
                    if not result.is_done:
                        await _result_event(result).wait()
        finally:
            acc.flush_done()

    async def partitions_for(self, topic: str) -> set[int]:
        """The topic's partition ids (waits for its metadata; may auto-create it)."""
        if self._state is not _STARTED:
            raise self._not_started()
        return await self.client.wait_for_topic(topic, self._max_block_ms)

    # --- waiting ---------------------------------------------------------------------------

    def _on_memory_freed(self) -> None:
        event = self._memory_event
        if event is not None:
            self._memory_event = None
            event.set()

    async def _wait_memory(self, deadline: int) -> None:
        """Wait until a batch returns its memory; ``KafkaTimeoutError`` at ``deadline``."""
        event = self._memory_event
        if event is None:
            event = self._memory_event = anyio.Event()
        self._sender.wakeup()  # the accumulator marks every batch sendable meanwhile
        remaining = deadline - monotonic_ms()
        if remaining > 0:
            with anyio.move_on_after(remaining / 1000):
                await event.wait()
        if self._sender.fatal_error is not None:
            raise self._sender.fatal_error
        if self._state is not _STARTED:
            raise self._not_started()
        if not event.is_set() and monotonic_ms() >= deadline:
            raise KafkaTimeoutError(
                f"Failed to allocate memory within the configured max blocking time "
                f"{self._max_block_ms} ms (buffer_memory={self._config.buffer_memory})")

    async def _append_when_memory(self, deadline: int, topic: str, partition: int,
                                  timestamp_ms: int, key: Any, value: Any,
                                  headers: tuple[tuple[str, bytes | None], ...]) -> Any:
        while True:
            await self._wait_memory(deadline)
            result = self._accumulator.append(topic, partition, timestamp_ms, key, value,
                                              headers, self._view, monotonic_ms())
            if not result.would_block:
                return result

    async def _wait_for_topic(self, topic: str, deadline: int
                              ) -> tuple[list[int], list[int], frozenset[int]]:
        while True:
            remaining = deadline - monotonic_ms()
            if remaining <= 0:
                raise KafkaTimeoutError(
                    f"Topic {topic} not present in metadata after {self._max_block_ms} ms")
            await self.client.wait_for_topic(topic, remaining)
            parts = self._view.topic_partitions(topic)
            if parts is not None:
                return parts

    async def _check_partition(self, topic: str, partition: int
                               ) -> tuple[list[int], list[int], frozenset[int]]:
        if not isinstance(partition, int) or isinstance(partition, bool) or partition < 0:
            raise IllegalArgumentError(f"partition must be an int >= 0, not {partition!r}")
        # the topic may have grown since our snapshot: look once more
        await self.client.refresh_metadata([topic])
        parts = self._view.topic_partitions(topic)
        if parts is None or partition not in parts[2]:
            known = [] if parts is None else parts[0]
            raise IllegalArgumentError(
                f"Unrecognized partition {partition} for topic {topic!r} "
                f"(its partitions: {known})")
        return parts

    # --- transactions ------------------------------------------------------------------------

    def _ensure_transactional(self) -> TransactionManager:
        if self._txn is None:
            raise IllegalOperation("You need to configure transaction_id to use transactions")
        if self._state is not _STARTED:
            raise self._not_started()
        return self._txn

    def _txn_send_error(self, tm: TransactionManager) -> None:
        if tm.has_error:
            tm.maybe_fail_with_error()
        raise IllegalOperation("Can't send messages while not in transaction")

    @property
    def has_fatal_error(self) -> bool:
        """True once the producer can only be stopped (fenced, unauthorized, …)."""
        if self._sender.fatal_error is not None:
            return True
        return self._txn is not None and self._txn.has_fatal_error

    async def _wait_txn(self, result: TransactionalRequestResult, what: str) -> None:
        if not result.is_done:
            event = anyio.Event()
            result.add_done_callback(lambda _r: event.set())
            self._sender.wakeup()
            with anyio.move_on_after(self._max_block_ms / 1000):
                await event.wait()
            if not result.is_done:
                raise KafkaTimeoutError(
                    f"Timeout expired after {self._max_block_ms} ms while awaiting {what}")
        if result.error is not None:
            raise result.error

    async def begin_transaction(self) -> None:
        """Start a transaction (waits for the producer id first)."""
        tm = self._ensure_transactional()
        assert self._init_result is not None
        await self._wait_txn(self._init_result, "the producer id (InitProducerId)")
        tm.begin_transaction()

    async def commit_transaction(self) -> None:
        """Deliver the transaction's records, then commit it (EndTxn)."""
        tm = self._ensure_transactional()
        await self._wait_txn(tm.begin_commit(), "the transaction's commit")

    async def abort_transaction(self) -> None:
        """Drop the records not yet sent and abort the transaction (EndTxn)."""
        tm = self._ensure_transactional()
        await self._wait_txn(tm.begin_abort(), "the transaction's abort")

    def transaction(self) -> TransactionContext:
        """``async with producer.transaction():`` commits on success, aborts on error."""
        return TransactionContext(self)

    async def send_offsets_to_transaction(
            self, offsets: Mapping[TopicPartition, int | tuple[int, str] | OffsetAndMetadata],
            group_id: str | Any) -> None:
        """Commit consumer offsets as part of the transaction.  ``group_id`` is the group
        id, or a consumer's group metadata (``group_id``, ``generation_id``,
        ``member_id``, ``group_instance_id``: KIP-447 fencing)."""
        tm = self._ensure_transactional()
        if tm.state is not _IN_TRANSACTION:
            if tm.has_error:
                tm.maybe_fail_with_error()
            raise IllegalOperation("Not in the middle of a transaction")
        group = _group_metadata(group_id)
        normalised: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, value in offsets.items():
            if not isinstance(tp, TopicPartition):
                raise IllegalArgumentError(f"offsets keys must be TopicPartition, not {tp!r}")
            if isinstance(value, OffsetAndMetadata):
                normalised[tp] = value
            elif isinstance(value, int) and not isinstance(value, bool):
                normalised[tp] = OffsetAndMetadata(value, "")
            elif isinstance(value, tuple) and len(value) == 2:
                normalised[tp] = OffsetAndMetadata(int(value[0]), str(value[1]))
            else:
                raise IllegalArgumentError(
                    f"offset for {tp} must be an int, (offset, metadata) or "
                    f"OffsetAndMetadata, not {value!r}")
            if normalised[tp].offset < 0:
                raise IllegalArgumentError(f"offset for {tp} must be >= 0")
        result = tm.send_offsets_to_transaction(normalised, group)
        await self._wait_txn(result, "the offsets' commit in the transaction")

    def __repr__(self) -> str:
        return f"AIOKafkaProducer(client_id={self._config.client_id!r}, state={self._state})"


def _group_metadata(group: Any) -> ConsumerGroupMetadata:
    if isinstance(group, str):
        if not group:
            raise IllegalArgumentError("group_id must be a non-empty str")
        return ConsumerGroupMetadata(group)
    group_id = getattr(group, "group_id", None)
    if not isinstance(group_id, str) or not group_id:
        raise IllegalArgumentError(
            "expected a group id (str) or a consumer's group metadata with a group_id, "
            f"got {group!r}")
    return ConsumerGroupMetadata(
        group_id, getattr(group, "generation_id", -1), getattr(group, "member_id", ""),
        getattr(group, "group_instance_id", None))
