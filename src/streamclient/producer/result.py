"""Completion objects: one per batch, and a light handle per record.

A future per record costs about a microsecond on asyncio (and an anyio event far more),
which is a third of the whole per-record budget.  So, as in the Java client
(``ProduceRequestResult`` / ``FutureRecordMetadata``), a batch owns one
:class:`ProduceRequestResult` and each record gets a :class:`FutureRecordMetadata` that is
nothing but slots: the batch's result, the record's offset delta and sizes.

Neither class knows about event loops.  They offer:

* ``add_done_callback(fn)``: the async shell bridges to an anyio event or an asyncio
  future here, once per batch (or per awaited record), never per appended record;
* ``wait(timeout)``: blocks a thread (the sync facade), through a ``threading.Event``
  created only when somebody waits.

Completion happens once, on whatever thread runs the sender; callbacks run there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

from streamclient._native import native_impl
from streamclient.errors import KafkaTimeoutError
from streamclient.structs import RecordMetadata, TopicPartition

if TYPE_CHECKING:
    from streamclient.producer.fastpath import HandleFields
else:
    from streamclient.producer.fastpath import HandleFields as _PyHandleFields

    HandleFields = native_impl("streamclient.producer._cfastpath", "HandleFields", _PyHandleFields)

__all__ = ["FutureRecordMetadata", "ProduceRequestResult"]

log = logging.getLogger(__name__)

_event_lock = threading.Lock()

NO_TIMESTAMP = -1
CREATE_TIME = 0
LOG_APPEND_TIME = 1


# What a callback returns is ignored, so any return type is accepted.
RecordCallback = Callable[["FutureRecordMetadata"], object]
_Handle = TypeVar("_Handle", bound="FutureRecordMetadata")


def _run_callback(fn: Callable[..., object], arg: object) -> None:
    # A delivery callback is the application's code: its failure must not stop the
    # other records of the batch (or the sender) from completing.
    try:
        fn(arg)
    except Exception:
        log.exception("delivery callback %r raised", fn)


class ProduceRequestResult:
    """The outcome of one batch: base offset, LogAppendTime, log start offset, or an error."""

    __slots__ = (
        "_callbacks",
        "_done",
        "_event",
        "base_offset",
        "error",
        "log_append_time",
        "log_start_offset",
        "no_ack",
        "record_errors",
        "topic_partition",
    )

    def __init__(self, topic_partition: TopicPartition) -> None:
        self.topic_partition = topic_partition
        self.base_offset = -1
        self.log_append_time = NO_TIMESTAMP
        self.log_start_offset = -1
        self.error: BaseException | None = None
        # Produce v8+ names the records that made a batch fail (KIP-467)
        self.record_errors: dict[int, BaseException] | None = None
        # acks=0: the broker says nothing, the offset stays -1 (aiokafka resolves None)
        self.no_ack = False
        self._done = False
        self._callbacks: list[Callable[[ProduceRequestResult], None]] | None = None
        self._event: threading.Event | None = None

    # --- completing (the sender's side) ------------------------------------------------

    def set(self, base_offset: int, log_append_time: int, log_start_offset: int,
            error: BaseException | None = None,
            record_errors: dict[int, BaseException] | None = None) -> None:
        """Record the outcome; :meth:`done` publishes it."""
        self.base_offset = base_offset
        self.log_append_time = log_append_time
        self.log_start_offset = log_start_offset
        self.error = error
        self.record_errors = record_errors

    def done(self) -> None:
        """Mark complete, wake waiters and run the callbacks (once)."""
        if self._done:
            return
        # _done is written before _event is read, and wait() writes _event before it
        # reads _done: whichever runs second sees the other, so no waiter is missed.
        self._done = True
        event = self._event
        if event is not None:
            event.set()
        callbacks = self._callbacks
        if callbacks:
            self._callbacks = None
            for fn in callbacks:
                _run_callback(fn, self)

    # --- observing -----------------------------------------------------------------------

    @property
    def is_done(self) -> bool:
        return self._done

    def add_done_callback(self, fn: Callable[[ProduceRequestResult], None]) -> None:
        """Call ``fn(self)`` on completion, or now if already complete."""
        if self._done:
            _run_callback(fn, self)
            return
        if self._callbacks is None:
            self._callbacks = [fn]
        else:
            self._callbacks.append(fn)

    def wait(self, timeout: float | None = None) -> bool:
        """Block the calling thread until complete; ``False`` on timeout (seconds)."""
        if self._done:
            return True
        event = self._event
        if event is None:
            with _event_lock:
                event = self._event
                if event is None:
                    event = self._event = threading.Event()
        if self._done:
            return True
        return event.wait(timeout)

    def __repr__(self) -> str:
        state = "pending"
        if self._done:
            state = f"error={self.error!r}" if self.error else f"base_offset={self.base_offset}"
        return f"ProduceRequestResult({self.topic_partition}, {state})"


class FutureRecordMetadata(HandleFields):
    """One record's handle: resolves to :class:`RecordMetadata` when its batch completes.

    Its fields (the batch's result, the record's offset delta, timestamp and sizes) are
    :class:`~streamclient.producer.fastpath.HandleFields`.  If the batch is split
    (MESSAGE_TOO_LARGE), the handle is chained to its copy in the new batch (``_next``)
    and everything follows the chain, so the application's handle stays valid.
    """

    __slots__ = ()

    _result: ProduceRequestResult
    relative_offset: int
    timestamp: int
    serialized_key_size: int
    serialized_value_size: int
    _next: FutureRecordMetadata | None
    _callbacks: list[RecordCallback] | None

    # --- chaining (the accumulator's side) -------------------------------------------

    def chain(self, successor: FutureRecordMetadata) -> None:
        """Follow ``successor`` from now on; pending callbacks move there."""
        self._next = successor
        callbacks = self._callbacks
        if callbacks:
            self._callbacks = None
            for fn in callbacks:
                successor._add_callback(_called_with(fn, self))

    def _tail(self) -> FutureRecordMetadata:
        handle = self
        while handle._next is not None:
            handle = handle._next
        return handle

    def _fire(self) -> None:
        """Called by the batch once its result is complete."""
        callbacks = self._callbacks
        if callbacks:
            self._callbacks = None
            for fn in callbacks:
                _run_callback(fn, self)

    def _add_callback(self, fn: RecordCallback) -> None:
        if self._callbacks is None:
            self._callbacks = [fn]
        else:
            self._callbacks.append(fn)

    # --- observing -----------------------------------------------------------------------

    @property
    def topic_partition(self) -> TopicPartition:
        return self._result.topic_partition

    @property
    def request_result(self) -> ProduceRequestResult:
        """The batch result that decides this record (after following any split)."""
        return self._tail()._result

    def done(self) -> bool:
        return self._tail()._result.is_done

    def exception(self) -> BaseException | None:
        """The error, or ``None`` (also while pending)."""
        tail = self._tail()
        result = tail._result
        if not result.is_done:
            return None
        if result.record_errors and tail.relative_offset in result.record_errors:
            return result.record_errors[tail.relative_offset]
        return result.error

    def value(self) -> RecordMetadata:
        """The metadata; raises the batch's error.  Only once :meth:`done`."""
        tail = self._tail()
        result = tail._result
        if not result.is_done:
            raise KafkaTimeoutError("the record has not been acknowledged yet")
        error = self.exception()
        if error is not None:
            raise error
        return tail._metadata()

    def _metadata(self) -> RecordMetadata:
        result = self._result
        base = result.base_offset
        offset = base + self.relative_offset if base >= 0 else -1
        if result.log_append_time != NO_TIMESTAMP:
            timestamp, timestamp_type = result.log_append_time, LOG_APPEND_TIME
        else:
            timestamp, timestamp_type = self.timestamp, CREATE_TIME
        tp = result.topic_partition
        log_start = result.log_start_offset
        return RecordMetadata(tp.topic, tp.partition, tp, offset, timestamp, timestamp_type,
                              log_start if log_start >= 0 else None)

    def add_done_callback(self: _Handle, fn: Callable[[_Handle], object]) -> None:
        """Call ``fn(self)`` once the record is acknowledged or failed (or now if it is)."""
        tail = self._tail()
        # fn is only ever called with self, whichever handle of the chain completes
        callback = cast(RecordCallback, fn)
        if tail._result.is_done:
            _run_callback(callback, self)
        elif tail is self:
            self._add_callback(callback)
        else:
            tail._add_callback(_called_with(callback, self))

    def wait(self, timeout: float | None = None) -> bool:
        """Block the calling thread until done; ``False`` on timeout (seconds)."""
        # A split completes the old batch only after chaining, so looping on the tail
        # until a completed result has no successor cannot miss the final one.
        while True:
            tail = self._tail()
            if not tail._result.wait(timeout):
                return False
            if tail._next is None:
                return True

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """Wait (sync facade) and return the metadata, or raise its error."""
        if not self.wait(timeout):
            raise KafkaTimeoutError(f"no acknowledgement within {timeout} s")
        return self.value()

    def __repr__(self) -> str:
        return (f"FutureRecordMetadata({self.topic_partition}, "
                f"relative_offset={self.relative_offset}, done={self.done()})")


def _called_with(fn: RecordCallback, handle: FutureRecordMetadata) -> RecordCallback:
    """``fn`` called with ``handle`` whichever handle of the chain completes: the
    application registered it on ``handle``."""
    return lambda _completed: fn(handle)
