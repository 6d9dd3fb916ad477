"""``KafkaConsumer``: the blocking consumer (kafka-python's and Java's shape, aiokafka's keywords).

An :class:`~streamclient.consumer.consumer.AIOKafkaConsumer` runs on the shared loop thread
(:mod:`streamclient.sync.portal`) inside one *lifetime task* that starts it and, at
:meth:`KafkaConsumer.close`, stops it (the async consumer must start and stop in the same
task).  Its fetcher prefetches in the background as usual.

``poll()`` without a hop: records the fetcher already buffered are drained on the
caller's thread.  That needs the fetcher's application side and its loop side to agree on
who touches the buffer, so the consumer is built with :class:`_SharedFetcher`, a
:class:`~streamclient.consumer.fetcher.Fetcher` whose buffer operations (drain, taking a
fetch response, choosing partitions to fetch, discarding) hold one lock, and whose
``wake()`` from a foreign thread is a fire-and-forget call to the loop.  Only when nothing
is buffered and the caller is willing to wait does ``poll()`` hop to ``getmany``.  The
fast path also depends on the group coordinator's poll timer being a plain timestamp
(``membership.record_poll``); after a poll-timeout leave, the first poll hops so the
coordinator rejoins.  (These reach into the consumer shell's internals: ``_build``,
``_fetcher``, ``_coordinator``; a factory hook there would make it a contract.)

Rebalance listener callbacks run on the caller's thread: the coordinator (on the loop)
queues each callback and waits for it; the application's thread runs it in its next
``poll()`` — or in whatever blocking consumer call it is waiting in (``close()``, the
constructor's first join, a commit), so a rebalance never waits for a thread that is
itself waiting for the loop.  Like Java's, a rebalance therefore progresses only as fast
as the application polls (bounded by ``max_poll_interval_ms``).
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import anyio
import anyio.abc

from streamclient.abc import ConsumerRebalanceListener
from streamclient.consumer.consumer import AIOKafkaConsumer
from streamclient.consumer.fetch_request import FetchPlan
from streamclient.consumer.fetcher import Fetcher
from streamclient.consumer.group.membership import ConsumerGroupMetadata
from streamclient.errors import (
    ConsumerStoppedError,
    KafkaTimeoutError,
    RecordTooLargeError,
)
from streamclient.protocol.messages.fetch import FetchResponse
from streamclient.structs import (
    ConsumerRecord,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    TopicPartition,
)
from streamclient.sync.portal import LoopThread, get_loop_thread

__all__ = ["KafkaConsumer"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Records = dict[TopicPartition, list[ConsumerRecord[Any, Any]]]

# an iteration without consumer_timeout_ms waits in slices of this length, so the
# iterator stays responsive to close() from the same thread's signal handlers
_ITER_SLICE_MS = 1000


class _SharedFetcher(Fetcher):
    """A Fetcher whose buffer the application's thread may drain while the loop fills it."""

    def __init__(self, *args: Any, loop_thread: LoopThread, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loop_thread = loop_thread
        # re-entrant: drain() discards exhausted fetches, which takes it again
        self._lock = threading.RLock()

    def wake(self) -> None:
        if self._loop_thread.in_loop_thread():
            super().wake()
        else:  # anyio events are not thread-safe: set it on the loop
            self._loop_thread.call_soon(super().wake)

    def drain(
        self, partitions: Collection[TopicPartition], max_records: int | None
    ) -> Records:
        with self._lock:
            return super().drain(partitions, max_records)

    def _take_response(self, node: int, plan: FetchPlan, response: FetchResponse) -> bool:
        with self._lock:
            return super()._take_response(node, plan, response)

    def _send_fetches(self, tg: anyio.abc.TaskGroup) -> None:
        # drain() pops and re-inserts partitions (round robin): deciding what to fetch
        # in between would fetch a partition that still has data buffered
        with self._lock:
            super()._send_fetches(tg)

    def discard_unassigned(self) -> None:
        with self._lock:
            super().discard_unassigned()

    def invalidate(self, tp: TopicPartition) -> None:
        with self._lock:
            super().invalidate(tp)


class _LoopConsumer(AIOKafkaConsumer):
    """The async consumer the blocking one drives, built with a :class:`_SharedFetcher`."""

    def __init__(self, loop_thread: LoopThread, *topics: str, **kwargs: Any) -> None:
        self._loop_thread = loop_thread
        super().__init__(*topics, **kwargs)

    def _build(self) -> None:
        super()._build()
        plain = self._fetcher
        assert plain is not None
        self._fetcher = _SharedFetcher(
            self._client,
            self._subscription,
            self._config,
            committed_lookup=plain._committed_lookup,
            loop_thread=self._loop_thread,
        )
        self._fetcher.prepare()


class _CallerThreadListener(ConsumerRebalanceListener):
    """Installed on the loop: hands each callback to the application's thread and waits."""

    def __init__(self, owner: KafkaConsumer, listener: ConsumerRebalanceListener) -> None:
        self._owner = owner
        self.listener = listener

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._owner._run_on_caller(self.listener.on_partitions_revoked, revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._owner._run_on_caller(self.listener.on_partitions_assigned, assigned)

    async def on_partitions_lost(self, lost: list[TopicPartition]) -> None:
        await self._owner._run_on_caller(self.listener.on_partitions_lost, lost)


class KafkaConsumer:
    """A blocking Kafka consumer: ``KafkaConsumer(*topics, **kwargs)``.

    Keywords are :class:`~streamclient.consumer.consumer.AIOKafkaConsumer`'s (aiokafka's),
    except ``consumer_timeout_ms``, which has kafka-python's meaning here: iteration
    (``for record in consumer``) stops after that long without a record (default: never).
    The constructor connects and, when given topics with a ``group_id``, waits for the
    first assignment.  Not thread-safe: use one consumer from one thread at a time.
    """

    def __init__(
        self,
        *topics: str,
        consumer_timeout_ms: float = math.inf,
        **kwargs: Any,
    ) -> None:
        if consumer_timeout_ms < 0:
            raise ValueError("consumer_timeout_ms must not be negative")
        self._loop = get_loop_thread()
        self._consumer_timeout_ms = consumer_timeout_ms
        self._cond = threading.Condition()
        self._callbacks: deque[Callable[[], None]] = deque()
        self._running_callbacks = False
        self._waiting_scope: anyio.CancelScope | None = None  # touched on the loop only
        self._closing: anyio.Event | None = None
        self._closed = False
        self._aio = _LoopConsumer(self._loop, *topics, **kwargs)
        self._max_poll_records: int | None = self._aio._config.max_poll_records
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._lifetime = self._loop.submit(self._live, started)
        try:
            self._wait(started)
        except BaseException:
            self._closed = True
            raise

    # --- the loop side ----------------------------------------------------------------

    async def _live(self, started: concurrent.futures.Future[None]) -> None:
        """The lifetime task: start, wait for close(), stop — all in one task."""
        self._closing = anyio.Event()
        try:
            await self._aio.start()
        except Exception as exc:
            started.set_exception(exc)
            return
        except BaseException:
            started.set_exception(ConsumerStoppedError())
            raise
        started.set_result(None)
        try:
            await self._closing.wait()
        finally:
            await self._aio.stop()

    async def _poll_on_loop(self, timeout_ms: int, max_records: int | None) -> Records:
        with anyio.CancelScope() as scope:
            if self._callbacks:
                return {}  # a listener callback waits for this thread: run it first
            self._waiting_scope = scope
            try:
                return await self._aio.getmany(timeout_ms=timeout_ms, max_records=max_records)
            finally:
                self._waiting_scope = None
        return {}

    async def _run_on_caller(self, callback: Callable[[Any], object], parts: Any) -> None:
        """On the loop: run ``callback(parts)`` on the application's thread, wait for it."""
        done = anyio.Event()
        loop = self._loop

        def run() -> None:
            try:
                callback(parts)
            except Exception:
                log.exception("the rebalance listener %r failed", callback)
            finally:
                loop.call_soon(done.set)

        self._queue_for_caller(run)
        if self._waiting_scope is not None:
            self._waiting_scope.cancel()
        await done.wait()

    def _queue_for_caller(self, callback: Callable[[], None]) -> None:
        with self._cond:
            self._callbacks.append(callback)
            self._cond.notify_all()

    # --- the caller's side ------------------------------------------------------------

    def _run_callbacks(self) -> None:
        # an unlocked look first: the loop only appends, and a callback queued just after
        # it runs in the next call, as one queued just after taking the lock would.
        # While a callback runs, one that calls back into the consumer runs nothing.
        if not self._callbacks or self._running_callbacks:
            return
        self._running_callbacks = True
        try:
            while True:
                with self._cond:
                    if not self._callbacks:
                        return
                    callback = self._callbacks.popleft()
                callback()
        finally:
            self._running_callbacks = False

    def _wait(self, future: concurrent.futures.Future[T], timeout: float | None = None) -> T:
        """Wait for ``future`` (work on the loop), running the callbacks queued for this
        thread meanwhile."""
        def wake(_: object) -> None:
            with self._cond:
                self._cond.notify_all()

        future.add_done_callback(wake)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._run_callbacks()
            with self._cond:
                while not self._callbacks and not future.done():
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        future.cancel()
                        raise KafkaTimeoutError(f"timed out after {timeout} s")
                    self._cond.wait(remaining)
                if future.done() and not self._callbacks:
                    return future.result()

    def _hop(self, func: Callable[..., Any], *args: Any) -> Any:
        if self._closed:
            raise ConsumerStoppedError()
        return self._wait(self._loop.submit(func, *args))

    # --- lifecycle ----------------------------------------------------------------------

    def close(self, timeout_ms: float | None = None) -> None:
        """Commit (auto-commit), run the revocation listener, leave the group and close
        the connections.  Idempotent."""
        if self._closed:
            return
        self._loop.check_caller()
        self._closed = True
        closing = self._closing
        assert closing is not None
        self._loop.call_soon(closing.set)
        self._wait(self._lifetime, None if timeout_ms is None else timeout_ms / 1000)

    def __enter__(self) -> KafkaConsumer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- fetching -----------------------------------------------------------------------

    def _drain_here(self, max_records: int | None) -> Records | None:
        """Buffered records drained on this thread, or ``None`` when only the loop can
        answer (not started, or the coordinator must rejoin after a poll timeout)."""
        aio = self._aio
        if self._closed or aio._state != "started":
            return None
        fetcher, _ = aio._check_started()
        coordinator = aio._coordinator
        if coordinator is not None:
            if coordinator._left_for_poll_timeout:
                return None
            coordinator.membership.record_poll(self._loop.now_ms())
        return fetcher.drain((), max_records)

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> Records:
        """Records by partition: those already fetched at once, else wait up to
        ``timeout_ms`` for some.  Runs pending rebalance callbacks first."""
        if max_records is not None and (
            not isinstance(max_records, int) or isinstance(max_records, bool) or max_records < 1
        ):
            raise ValueError("`max_records` must be a positive Integer")
        if timeout_ms < 0:
            raise ValueError("`timeout_ms` must not be negative")
        if self._closed:
            raise ConsumerStoppedError()
        self._run_callbacks()
        limit = max_records or self._max_poll_records
        records = self._drain_here(limit)
        if records or (records is not None and timeout_ms == 0):
            return records
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            remaining = max(0, int((deadline - time.monotonic()) * 1000))
            records = self._hop(self._poll_on_loop, remaining, limit)
            if records or remaining == 0:
                return records
            # a rebalance callback interrupted the wait: it ran, keep waiting

    def __iter__(self) -> Iterator[ConsumerRecord[Any, Any]]:
        return self

    def __next__(self) -> ConsumerRecord[Any, Any]:
        if not self._callbacks:
            # the common case, kept short: a buffered record, no hop
            try:
                records = self._drain_here(1)
            except RecordTooLargeError:
                log.exception("a record too large for max_partition_fetch_bytes was skipped")
                records = None
            if records:
                for batch in records.values():
                    return batch[0]
        timeout = self._consumer_timeout_ms
        deadline = time.monotonic() + timeout / 1000
        while True:
            remaining = deadline - time.monotonic()
            if remaining < 0:
                raise StopIteration
            wait_ms = int(min(remaining * 1000, _ITER_SLICE_MS))
            try:
                records = self.poll(timeout_ms=wait_ms, max_records=1)
            except ConsumerStoppedError:
                raise StopIteration from None
            except RecordTooLargeError:
                log.exception("a record too large for max_partition_fetch_bytes was skipped")
                continue
            for batch in records.values():
                return batch[0]
            if wait_ms == 0:
                raise StopIteration

    # --- subscription -------------------------------------------------------------------

    def subscribe(
        self,
        topics: Iterable[str] = (),
        pattern: str | re.Pattern[str] | None = None,
        listener: ConsumerRebalanceListener | None = None,
    ) -> None:
        """Subscribe to ``topics`` or a ``pattern``; ``listener``'s callbacks run on the
        thread that polls."""
        wrapped = None
        if listener is not None:
            if not isinstance(listener, ConsumerRebalanceListener):
                raise TypeError("listener should be an instance of ConsumerRebalanceListener")
            for name in ("on_partitions_revoked", "on_partitions_assigned", "on_partitions_lost"):
                if inspect.iscoroutinefunction(getattr(listener, name, None)):
                    raise TypeError(
                        f"{type(listener).__name__}.{name} is a coroutine function: the "
                        "blocking consumer calls listeners on the polling thread, use "
                        "plain methods"
                    )
            wrapped = _CallerThreadListener(self, listener)
        self._hop(self._aio.subscribe, list(topics) if topics else (), pattern, wrapped)

    def subscription(self) -> frozenset[str]:
        return self._hop(self._aio.subscription)

    def unsubscribe(self) -> None:
        self._hop(self._aio.unsubscribe)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        self._hop(self._aio.assign, list(partitions))

    def assignment(self) -> set[TopicPartition]:
        return self._hop(self._aio.assignment)

    # --- positions ----------------------------------------------------------------------

    def position(self, partition: TopicPartition) -> int:
        return self._hop(self._aio.position, partition)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self._hop(self._aio.highwater, partition)

    def last_stable_offset(self, partition: TopicPartition) -> int | None:
        return self._hop(self._aio.last_stable_offset, partition)

    def seek(self, partition: TopicPartition, offset: int, *,
             leader_epoch: int | None = None) -> None:
        """Fetch ``partition`` from ``offset`` next; with ``leader_epoch`` (the epoch of
        the record before ``offset``) the position is first checked against the leader's
        log (KIP-320), as :meth:`AIOKafkaConsumer.seek` does."""
        self._hop(functools.partial(self._aio.seek, leader_epoch=leader_epoch),
                  partition, offset)

    def seek_to_beginning(self, *partitions: TopicPartition) -> bool:
        return self._hop(self._aio.seek_to_beginning, *partitions)

    def seek_to_end(self, *partitions: TopicPartition) -> bool:
        return self._hop(self._aio.seek_to_end, *partitions)

    def seek_to_committed(self, *partitions: TopicPartition) -> dict[TopicPartition, int | None]:
        return self._hop(self._aio.seek_to_committed, *partitions)

    # --- offsets ------------------------------------------------------------------------

    def commit(
        self,
        offsets: Mapping[TopicPartition, int | tuple[int, str] | OffsetAndMetadata]
        | None = None,
    ) -> None:
        """Commit ``offsets`` (default: the positions of every assigned partition)."""
        self._hop(self._aio.commit, offsets)

    def commit_async(
        self,
        offsets: Mapping[TopicPartition, int | tuple[int, str] | OffsetAndMetadata]
        | None = None,
        callback: Callable[[Mapping[TopicPartition, Any] | None, BaseException | None], None]
        | None = None,
    ) -> concurrent.futures.Future[None]:
        """Start a commit and return its future; ``callback(offsets, error)`` runs on the
        polling thread, in a later ``poll()`` (kafka-python's ``commit_async``)."""
        if self._closed:
            raise ConsumerStoppedError()
        future: concurrent.futures.Future[None] = self._loop.submit(self._aio.commit, offsets)
        if callback is not None:
            def queue(done: concurrent.futures.Future[None]) -> None:
                error = None if done.cancelled() else done.exception()
                self._queue_for_caller(lambda: _call_logged(callback, offsets, error))

            future.add_done_callback(queue)
        return future

    def committed(self, partition: TopicPartition) -> int | None:
        return self._hop(self._aio.committed, partition)

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        return self._hop(self._aio.offsets_for_times, timestamps)

    def beginning_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return self._hop(self._aio.beginning_offsets, list(partitions))

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return self._hop(self._aio.end_offsets, list(partitions))

    # --- pause / resume -----------------------------------------------------------------

    def pause(self, *partitions: TopicPartition) -> None:
        self._hop(self._aio.pause, *partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self._hop(self._aio.resume, *partitions)

    def paused(self) -> set[TopicPartition]:
        return self._hop(self._aio.paused)

    # --- metadata -----------------------------------------------------------------------

    def topics(self) -> set[str]:
        return self._hop(self._aio.topics)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._hop(self._aio.partitions_for_topic, topic)

    def group_metadata(self) -> ConsumerGroupMetadata:
        """For ``KafkaProducer.send_offsets_to_transaction`` (KIP-447)."""
        return self._hop(self._aio.group_metadata)

    def __repr__(self) -> str:
        state = "closed" if self._closed else self._aio._state
        return f"<KafkaConsumer {state}>"


def _call_logged(fn: Callable[..., object], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("callback %r failed", fn)
