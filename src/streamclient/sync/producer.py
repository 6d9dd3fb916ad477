"""``KafkaProducer``: the blocking producer, with no hop to the loop thread per record.

An :class:`~streamclient.producer.producer.AIOKafkaProducer` runs on the shared loop
thread (:mod:`streamclient.sync.portal`) inside one lifetime task (it must start and stop
in the same task); its sender drains the accumulator there as usual.

``send()`` runs on the caller's thread: serialize, pick the partition, and append to the
producer's :class:`~streamclient.producer.accumulator.RecordAccumulator`, which here is a
:class:`LockedAccumulator` (through ``AIOKafkaProducer._accumulator_class``, so the async
producer keeps the plain one) — every public method holds one lock, so the caller's appends
and the sender's ready/drain/complete steps never interleave inside the accumulator (the
granularity Java's accumulator has).  The sender is woken by a fire-and-forget call to
the loop only when a batch was created or filled and its wake event is not already set.
The loop is waited for only when the topic's metadata is unknown (the first send to a
topic) or a partition is not in the metadata snapshot.  Memory back-pressure waits on a
condition the accumulator's ``on_memory_freed`` hook signals, up to ``max_block_ms``.

``flush()`` waits on the batches' completion objects from the caller's thread (they are
thread-aware), also without a hop.  Delivery callbacks added to a :class:`FutureRecord`
run on the application's thread, inside :meth:`KafkaProducer.poll`, :meth:`flush` and
:meth:`close` (or at once when added to a finished record).

Transactions (``init_transactions``, ``begin_transaction``, ``commit_transaction``,
``abort_transaction``, ``send_offsets_to_transaction``) are one hop each.  The first
record of a partition in a transaction tells the transaction manager through the same
fire-and-forget call, which reaches the loop before any later hop (both go through the
loop's FIFO of thread-safe callbacks); the sender never drains a partition that is not in
the transaction yet.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import anyio

from streamclient.errors import (
    IllegalOperation,
    IllegalStateError,
    KafkaTimeoutError,
    ProducerClosed,
)
from streamclient.producer.accumulator import RecordAccumulator, RecordAppendResult
from streamclient.producer.producer import AIOKafkaProducer
from streamclient.producer.result import FutureRecordMetadata
from streamclient.producer.transactions import TransactionState
from streamclient.structs import OffsetAndMetadata, RecordMetadata, TopicPartition
from streamclient.sync.portal import LoopThread, get_loop_thread

__all__ = ["FutureRecord", "KafkaProducer", "LockedAccumulator"]

log = logging.getLogger(__name__)

_IN_TRANSACTION = TransactionState.IN_TRANSACTION
_BYTES_TYPES = (bytes, bytearray, memoryview)
_time_ns = time.time_ns


def _monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


class LockedAccumulator(RecordAccumulator):
    """A :class:`RecordAccumulator` whose public methods each hold :attr:`lock`.

    Built by wrapping every public method of the base class, so a method added there is
    locked here too.  Re-entrant: the memory hook and completion callbacks run inside.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.lock = threading.RLock()
        super().__init__(*args, **kwargs)


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def run(self: LockedAccumulator, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return run


for _name, _member in list(vars(RecordAccumulator).items()):
    if not _name.startswith("_") and callable(_member):
        setattr(LockedAccumulator, _name, _locked(_member))


class _LoopProducer(AIOKafkaProducer):
    """The async producer the blocking one drives, with a :class:`LockedAccumulator`."""

    _accumulator_class = LockedAccumulator
    # FutureRecord wraps plain handles (completed and waited on from threads)
    _handle_class = FutureRecordMetadata


class FutureRecord:
    """What :meth:`KafkaProducer.send` returns: resolves to a ``RecordMetadata`` (offset
    -1 with ``acks=0``).  kafka-python's ``get(timeout)``, ``succeeded()``, ``failed()``,
    ``add_callback``/``add_errback``, and ``concurrent.futures``' ``result(timeout)``,
    ``exception(timeout)``, ``done()``, ``add_done_callback``.  Callbacks run on the
    application's thread (see :meth:`KafkaProducer.poll`)."""

    __slots__ = ("_handle", "_producer")

    def __init__(self, handle: FutureRecordMetadata, producer: KafkaProducer) -> None:
        self._handle = handle
        self._producer = producer

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """Wait up to ``timeout`` seconds; the metadata, or the record's error
        (``KafkaTimeoutError`` when it is not acknowledged in time)."""
        if not self._handle.done():
            self._producer._loop.check_caller()
        return self._handle.get(timeout)

    result = get

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if not self._handle.done():
            self._producer._loop.check_caller()
        if not self._handle.wait(timeout):
            raise KafkaTimeoutError(f"no acknowledgement within {timeout} s")
        return self._handle.exception()

    def done(self) -> bool:
        return self._handle.done()

    def succeeded(self) -> bool:
        return self._handle.done() and self._handle.exception() is None

    def failed(self) -> bool:
        return self._handle.done() and self._handle.exception() is not None

    def cancel(self) -> bool:
        """A record cannot be taken back: always ``False``."""
        return False

    def cancelled(self) -> bool:
        return False

    @property
    def topic_partition(self) -> TopicPartition:
        return self._handle.topic_partition

    def add_done_callback(self, fn: Callable[[FutureRecord], object]) -> FutureRecord:
        """``fn(future)`` once the record is acknowledged or failed."""
        self._on_done(lambda: fn(self))
        return self

    def add_callback(self, fn: Callable[..., object], *args: Any, **kwargs: Any) -> FutureRecord:
        """``fn(*args, metadata, **kwargs)`` when the record is acknowledged."""
        def call() -> None:
            if self._handle.exception() is None:
                fn(*args, self._handle.value(), **kwargs)

        self._on_done(call)
        return self

    def add_errback(self, fn: Callable[..., object], *args: Any, **kwargs: Any) -> FutureRecord:
        """``fn(*args, error, **kwargs)`` when the record failed."""
        def call() -> None:
            error = self._handle.exception()
            if error is not None:
                fn(*args, error, **kwargs)

        self._on_done(call)
        return self

    def _on_done(self, call: Callable[[], object]) -> None:
        producer = self._producer
        # records complete inside the accumulator's methods, under its lock: registering
        # under it too means a completion cannot slip between the check and the add
        with producer._acc.lock:
            done = self._handle.done()
            if not done:
                queue = producer._queue_callback
                self._handle.add_done_callback(lambda _h: queue(call))
        if done:
            _call_logged(call)

    def __repr__(self) -> str:
        return f"FutureRecord({self._handle!r})"


class KafkaProducer:
    """A blocking Kafka producer: ``KafkaProducer(**kwargs)`` with
    :class:`~streamclient.producer.producer.AIOKafkaProducer`'s keywords (aiokafka's, plus
    ``buffer_memory``, ``max_block_ms``, ``delivery_timeout_ms``, …).

    ``send()`` may be called from several threads at once; the other methods are meant
    for one thread at a time.  The constructor connects (bootstrap).
    """

    def __init__(self, **configs: Any) -> None:
        self._loop: LoopThread = get_loop_thread()
        self._aio = _LoopProducer(**configs)
        self._memory = threading.Condition()
        self._acc = self._install_accumulator()
        self._sender = self._aio._sender
        self._view = self._aio._view
        self._txn = self._aio._txn
        self._callbacks: deque[Callable[[], object]] = deque()
        self._callbacks_ready = threading.Condition()
        self._closing: anyio.Event | None = None
        self._closed = False
        self._wake_pending = False
        # send()'s common case in one call, as in the async producer; under the lock here
        self._fast_append: Callable[..., FutureRecordMetadata | None] | None = None
        if self._aio._fast_eligible:
            self._fast_append = self._acc.fast_appender(self._view).append
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._lifetime = self._loop.submit(self._live, started)
        started.result()

    def _install_accumulator(self) -> LockedAccumulator:
        acc = self._aio._accumulator
        assert isinstance(acc, LockedAccumulator)
        async_hook = acc.on_memory_freed

        def memory_freed() -> None:
            if async_hook is not None:
                async_hook()
            with self._memory:
                self._memory.notify_all()

        acc.on_memory_freed = memory_freed
        return acc

    # --- the loop side ----------------------------------------------------------------

    async def _live(self, started: concurrent.futures.Future[None]) -> None:
        self._closing = anyio.Event()
        try:
            await self._aio.start()
        except Exception as exc:
            started.set_exception(exc)
            return
        except BaseException:
            started.set_exception(ProducerClosed("the producer's loop stopped"))
            raise
        started.set_result(None)
        try:
            await self._closing.wait()
        finally:
            await self._aio.stop()

    def _wake_sender(self, new_partition: TopicPartition | None) -> None:
        """On the loop: a batch became sendable (and maybe a partition joined the
        transaction)."""
        # cleared before waking, so an append that found it set is seen by this pass
        self._wake_pending = False
        if new_partition is not None and self._txn is not None:
            self._txn.maybe_add_partition(new_partition)
        self._sender.wakeup()

    # --- sending ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ProducerClosed("the producer is closed")
        error = self._sender.fatal_error
        if error is not None:
            raise error

    def send(self, topic: str, value: Any = None, key: Any = None,
             partition: int | None = None, timestamp_ms: int | None = None,
             headers: Iterable[tuple[str, bytes | None]] | None = None) -> FutureRecord:
        """Queue a record; returns a :class:`FutureRecord`.

        Returns at once while the topic's metadata is known and the buffer has room;
        otherwise waits up to ``max_block_ms`` (``KafkaTimeoutError``).  Raises
        ``MessageSizeTooLargeError`` for a record that can never be sent and
        ``IllegalOperation`` on a transactional producer outside a transaction.
        """
        self._check_open()
        fast = self._fast_append
        if fast is not None and key is None and partition is None and headers is None:
            # a wakeup already scheduled (_wake_pending) runs a sender pass after this
            # append, so a queue of several batches needs no other
            with self._acc.lock:
                handle = fast(topic, timestamp_ms, None, value, self._wake_pending)
            if handle is not None:
                return FutureRecord(handle, self)
        aio = self._aio
        key, value = aio._serialize(key, value)
        tm = self._txn
        if tm is not None and tm.state is not _IN_TRANSACTION:
            if tm.has_error:
                tm.maybe_fail_with_error()
            raise IllegalOperation("Can't send messages while not in transaction")
        deadline = 0
        parts = self._view.topic_partitions(topic)
        if parts is None:
            deadline = _monotonic_ms() + aio._max_block_ms
            parts = self._loop.call(aio._wait_for_topic, topic, deadline)
        abort = False
        if partition is None:
            partition, abort = aio._choose_partition(topic, key, value, parts)
        elif partition not in parts[2]:
            parts = self._loop.call(aio._check_partition, topic, partition)
        if timestamp_ms is None:
            timestamp_ms = _time_ns() // 1_000_000
        header_list = tuple(headers) if headers else ()
        acc = self._acc
        now = _monotonic_ms()
        result = acc.append(topic, partition, timestamp_ms, key, value, header_list,
                            self._view, now, abort)
        if result.abort_for_new_batch:
            partition = aio._partition_after_new_batch(topic, key, value, parts,
                                                       result.partition)
            result = acc.append(topic, partition, timestamp_ms, key, value, header_list,
                                self._view, now)
        if result.would_block:
            result = self._append_when_memory(
                deadline or now + aio._max_block_ms,
                (topic, partition, timestamp_ms, key, value, header_list))
        if result.batch_is_full or result.new_batch_created:
            if tm is not None and result.new_batch_created:
                self._loop.call_soon(self._wake_sender, TopicPartition(topic, result.partition))
            elif not self._wake_pending:
                # one wakeup in flight at a time: until the loop runs it, this thread may
                # append thousands of records, and each wakeup costs a write to the loop
                self._wake_pending = True
                self._loop.call_soon(self._wake_sender, None)
        handle = result.future
        assert handle is not None
        return FutureRecord(handle, self)

    def _append_when_memory(self, deadline: int, record: tuple[Any, ...]) -> RecordAppendResult:
        topic, partition, timestamp_ms, key, value, headers = record
        while True:
            # the accumulator now marks every batch sendable: let the sender drain them
            self._loop.call_soon(self._sender.wakeup)
            with self._memory:
                remaining = deadline - _monotonic_ms()
                if remaining > 0:
                    self._memory.wait(remaining / 1000)
            self._check_open()
            result = self._acc.append(topic, partition, timestamp_ms, key, value, headers,
                                      self._view, _monotonic_ms())
            if not result.would_block:
                return result
            if _monotonic_ms() >= deadline:
                raise KafkaTimeoutError(
                    f"Failed to allocate memory within the configured max blocking time "
                    f"{self._aio._max_block_ms} ms "
                    f"(buffer_memory={self._aio._config.buffer_memory})")

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record sent so far is acknowledged or failed (``timeout`` in
        seconds: ``KafkaTimeoutError``), then run the delivery callbacks due."""
        if self._closed:
            raise ProducerClosed("the producer is closed")
        deadline = None if timeout is None else time.monotonic() + timeout
        acc = self._acc
        acc.begin_flush()
        self._loop.call_soon(self._sender.wakeup)
        try:
            # a split replaces batches with new ones: loop until none is left
            while acc.has_incomplete():
                for result in acc.incomplete_results():
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if not result.wait(None if remaining is None else max(remaining, 0)):
                        raise KafkaTimeoutError(f"flush() timed out after {timeout} s")
        finally:
            acc.flush_done()
        self.poll()

    # --- delivery callbacks -------------------------------------------------------------

    def _queue_callback(self, call: Callable[[], object]) -> None:
        with self._callbacks_ready:
            self._callbacks.append(call)
            self._callbacks_ready.notify_all()

    def poll(self, timeout: float = 0) -> int:
        """Run the delivery callbacks that are due on this thread, waiting up to
        ``timeout`` seconds for the first; how many ran."""
        if timeout > 0:
            with self._callbacks_ready:
                if not self._callbacks:
                    self._callbacks_ready.wait(timeout)
        ran = 0
        while True:
            try:
                call = self._callbacks.popleft()
            except IndexError:
                return ran
            _call_logged(call)
            ran += 1

    # --- lifecycle ----------------------------------------------------------------------

    def close(self, timeout: float | None = None) -> None:
        """Deliver what was sent (aborting an open transaction), then close; runs the
        delivery callbacks due.  Idempotent."""
        if self._closed:
            return
        self._loop.check_caller()
        self._closed = True
        closing = self._closing
        assert closing is not None
        self._loop.call_soon(closing.set)
        try:
            self._lifetime.result(timeout)
        except concurrent.futures.TimeoutError:
            raise KafkaTimeoutError(f"close() timed out after {timeout} s") from None
        finally:
            self.poll()

    def __enter__(self) -> KafkaProducer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def partitions_for(self, topic: str) -> set[int]:
        """The topic's partition ids (waits for its metadata; may auto-create it)."""
        self._check_open()
        return self._loop.call(self._aio.partitions_for, topic)

    @property
    def has_fatal_error(self) -> bool:
        return self._aio.has_fatal_error

    # --- transactions (one hop each) ----------------------------------------------------

    def init_transactions(self) -> None:
        """Wait for the producer id (InitProducerId, started by the constructor)."""
        self._check_open()
        aio = self._aio
        aio._ensure_transactional()
        result = aio._init_result
        if result is None:
            raise IllegalStateError("the transactional producer did not initialise")
        self._loop.call(aio._wait_txn, result, "the producer id (InitProducerId)")

    def begin_transaction(self) -> None:
        self._check_open()
        self._loop.call(self._aio.begin_transaction)

    def commit_transaction(self) -> None:
        """Deliver the transaction's records, then commit it."""
        self._check_open()
        self._loop.call(self._aio.commit_transaction)
        self.poll()

    def abort_transaction(self) -> None:
        """Drop the records not yet sent and abort the transaction."""
        self._check_open()
        self._loop.call(self._aio.abort_transaction)
        self.poll()

    def send_offsets_to_transaction(
            self, offsets: Mapping[TopicPartition, int | tuple[int, str] | OffsetAndMetadata],
            group_id: str | Any) -> None:
        """Commit consumer offsets in the transaction; ``group_id`` is a group id or a
        consumer's ``group_metadata()`` (KIP-447)."""
        self._check_open()
        self._loop.call(self._aio.send_offsets_to_transaction, offsets, group_id)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<KafkaProducer {self._aio._config.client_id!r} {state}>"


def _call_logged(call: Callable[[], object]) -> None:
    try:
        call()
    except Exception:
        log.exception("a delivery callback failed")

