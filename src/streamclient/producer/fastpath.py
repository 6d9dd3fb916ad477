"""The producer's per-record fast path, in Python; ``_cfastpath.c`` is the same in C.

:class:`FastAppender` appends a record to the open batch of its topic's sticky partition
when nothing else has to happen: the batch stays below its size, the sticky partition's
turn does not end, and the sender needs no wakeup.  Otherwise it returns ``None`` having
changed nothing, and the caller takes the general path
(:meth:`~streamclient.producer.accumulator.RecordAccumulator.append`), which makes every
decision.  :class:`HandleFields` is the per-record handle's state, the base of
:class:`~streamclient.producer.result.FutureRecordMetadata`.  The handles the C fast
path makes are not tracked by the garbage collector, which would otherwise walk every
pending handle on each collection: a handle can only be in a cycle through its
callbacks, and those are dropped once they have run.

The C versions are used when the extension was built and ``STREAMCLIENT_PURE_PYTHON``
is not set (see :mod:`streamclient._native`); the tests hold the two to the same results.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamclient.producer.result import FutureRecordMetadata, ProduceRequestResult

__all__ = ["FastAppender", "HandleFields"]

_time_ns = time.time_ns

Bytes = bytes | bytearray | memoryview


class HandleFields:
    __slots__ = ("_callbacks", "_next", "_result", "relative_offset", "serialized_key_size",
                 "serialized_value_size", "timestamp")

    def __init__(self, result: ProduceRequestResult, relative_offset: int, timestamp: int,
                 serialized_key_size: int, serialized_value_size: int) -> None:
        self._result = result
        self.relative_offset = relative_offset
        self.timestamp = timestamp
        self.serialized_key_size = serialized_key_size
        self.serialized_value_size = serialized_value_size
        self._next: Any = None  # the handle's copy after a split
        self._callbacks: Any = None


class FastAppender:
    """Appends to the accumulator's open sticky batches, or declines.

    ``topics`` is the accumulator's ``{topic: _TopicInfo}``.  With ``view`` (the
    producer's :class:`~streamclient.producer.sender.MetadataView`), a topic whose
    metadata is not cached is declined, so that ``send()`` waits for it as usual.  A
    record whose key and value exceed ``max_record_size`` bytes is declined, so that the
    general path checks its size against the producer's limits.
    """

    __slots__ = ("_topics", "_view", "enabled", "max_record_size")

    def __init__(self, topics: dict[str, Any], view: Any = None,
                 max_record_size: int = 0) -> None:
        self._topics = topics
        self._view = view
        self.max_record_size = max_record_size
        self.enabled = True  # the accumulator clears it on close

    def append(self, topic: str, timestamp_ms: int | None, key: Bytes | None,
               value: Bytes | None, woken: bool) -> FutureRecordMetadata | None:
        """Append a record (no headers, its partition left to the sticky partitioner);
        ``timestamp_ms=None`` stamps the wall clock.  ``woken``: the sender is already
        due to run, so a queue of several batches needs no wakeup."""
        # exact bytes only: other bytes-likes and None take the general path
        if not self.enabled or type(value) is not bytes or (
                key is not None and type(key) is not bytes):
            return None
        if len(value) + (0 if key is None else len(key)) > self.max_record_size:
            return None
        view = self._view
        if view is not None and view._topics.get(topic) is None:
            return None
        info = self._topics.get(topic)
        if info is None:
            return None
        sticky = info.partitioner
        pinfo = sticky._info
        if pinfo is None:
            return None
        dq = info.batches.get(pinfo.index)
        if not dq or (len(dq) > 1 and not woken):
            return None
        batch = dq[-1]
        if batch.closed:
            return None
        builder = batch.builder
        before = builder.appended_size
        produced = pinfo.produced_bytes
        if timestamp_ms is None:
            timestamp_ms = _time_ns() // 1_000_000
        # below the batch size (else it is full: the sender must hear of it), and below
        # twice the sticky partition's quota: KIP-794 switches partition past the quota
        # once a batch is full, and past twice the quota in any case
        delta = builder.append_below(
            min(batch.batch_size, before + 2 * sticky.sticky_batch_size - produced),
            timestamp_ms, key, value)
        if delta is None:
            return None
        handle: FutureRecordMetadata = batch.handle_class(
            batch.result, delta, timestamp_ms, -1 if key is None else len(key), len(value))
        batch.handles.append(handle)
        pinfo.produced_bytes = produced + builder.appended_size - before
        return handle
