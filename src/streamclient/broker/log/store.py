"""The storage seam of a partition log: a ``LogStore`` is an ordered run of ``Segment``s.

A segment holds batches exactly as they go on the wire (offsets already assigned),
a sparse offset index and a time index.  Lookups never scan a whole segment: the
index gives the greatest indexed batch at or before the target and the scan walks
batch headers from there.  The in-memory store is in ``memory.py``; the disk store
(``.log``/``.index``/``.timeindex`` files) implements the same two classes.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from streamclient.broker.log.index import OffsetIndex, TimeIndex

# base offset (int64) and batch length (int32) start every batch; the rest of the
# header fields the store needs sit at fixed positions of a magic-2 batch.
_OFFSET_AND_LENGTH = struct.Struct(">qi")
_LAST_OFFSET_DELTA = struct.Struct(">i")
_MAX_TIMESTAMP = struct.Struct(">q")
LOG_OVERHEAD = 12
_LAST_OFFSET_DELTA_AT = 23
_MAX_TIMESTAMP_AT = 35
HEADER_SIZE = 61


@dataclass(frozen=True)
class BatchLocation:
    """Where one stored batch is and what it covers (from its header)."""

    position: int
    size: int
    base_offset: int
    last_offset: int
    max_timestamp: int

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1


class Segment(ABC):
    """Batches from ``base_offset`` on, with their indexes.

    Subclasses provide the bytes (``_read``, ``_write``, ``size_bytes``); the index
    maintenance and the lookups are shared.
    """

    def __init__(self, base_offset: int, created_ms: int, index_interval_bytes: int) -> None:
        self.base_offset = base_offset
        self.created_ms = created_ms
        self.offset_index = OffsetIndex()
        self.time_index = TimeIndex()
        self._index_interval_bytes = index_interval_bytes
        self._bytes_since_index = 0
        self.next_offset = base_offset
        # newest-first scans are rare; the running maximum serves ListOffsets -3 and
        # time-index entries (Kafka indexes the max timestamp so far, not the batch's own)
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.batch_count = 0

    # -- bytes, implemented by the store ---------------------------------------------
    @property
    @abstractmethod
    def size_bytes(self) -> int: ...

    @abstractmethod
    def _read(self, position: int, size: int) -> bytes: ...

    @abstractmethod
    def _write(self, data: bytes) -> None: ...

    @abstractmethod
    def _truncate_bytes(self, position: int) -> None: ...

    # -- shared logic -------------------------------------------------------------------
    def append(self, batch: bytes, *, base_offset: int, last_offset: int, max_timestamp: int) -> None:
        """Append one batch whose offsets are already assigned (``base_offset`` >= next)."""
        if base_offset < self.next_offset:
            raise ValueError(f"batch at {base_offset} is below the segment end {self.next_offset}")
        position = self.size_bytes
        self._write(batch)
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self.offset_of_max_timestamp = base_offset
        # index the first batch and then one per interval, like Kafka's index.interval.bytes
        if self.batch_count == 0 or self._bytes_since_index >= self._index_interval_bytes:
            self.offset_index.append(base_offset - self.base_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self._bytes_since_index = 0
        self._bytes_since_index += len(batch)
        self.batch_count += 1
        self.next_offset = last_offset + 1

    def header_at(self, position: int) -> BatchLocation:
        head = self._read(position, HEADER_SIZE)
        base_offset, length = _OFFSET_AND_LENGTH.unpack_from(head, 0)
        (delta,) = _LAST_OFFSET_DELTA.unpack_from(head, _LAST_OFFSET_DELTA_AT)
        (max_ts,) = _MAX_TIMESTAMP.unpack_from(head, _MAX_TIMESTAMP_AT)
        return BatchLocation(position, LOG_OVERHEAD + length, base_offset, base_offset + delta, max_ts)

    def batches_from(self, position: int) -> Iterator[BatchLocation]:
        end = self.size_bytes
        while position < end:
            loc = self.header_at(position)
            yield loc
            position += loc.size

    def find(self, offset: int) -> BatchLocation | None:
        """The batch holding ``offset``, or the first one after it; ``None`` past the end."""
        if offset >= self.next_offset:
            return None
        _, position = self.offset_index.lookup(max(0, offset - self.base_offset))
        for loc in self.batches_from(position):
            if loc.last_offset >= offset:
                return loc
        return None

    def find_by_timestamp(self, timestamp: int) -> BatchLocation | None:
        """The first batch whose max timestamp is >= ``timestamp``."""
        if self.max_timestamp < timestamp:
            return None
        start = self.time_index.lookup(timestamp)
        loc = self.find(self.base_offset if start is None else start)
        if loc is None:
            return None
        for candidate in self.batches_from(loc.position):
            if candidate.max_timestamp >= timestamp:
                return candidate
        return None

    def read(self, position: int, size: int) -> bytes:
        return self._read(position, size)

    def truncate_to(self, offset: int) -> None:
        """Drop every batch at or after ``offset`` (which must be a batch boundary)."""
        loc = self.find(offset)
        if loc is None:
            return
        if loc.base_offset < offset:
            raise ValueError(f"{offset} is inside the batch {loc.base_offset}..{loc.last_offset}")
        self._truncate_bytes(loc.position)
        self.offset_index.truncate_to(offset - self.base_offset)
        self.time_index.truncate_to(offset)
        self.next_offset = offset
        # recompute the running figures from what is left (rare: truncation only)
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.batch_count = 0
        for kept in self.batches_from(0):
            self.batch_count += 1
            if kept.max_timestamp > self.max_timestamp:
                self.max_timestamp = kept.max_timestamp
                self.offset_of_max_timestamp = kept.base_offset


class LogStore(ABC):
    """The segments of one partition, oldest first; the last one takes appends."""

    def __init__(self) -> None:
        self._segments: list[Segment] = []
        self._base_offsets: list[int] = []

    @abstractmethod
    def _new_segment(self, base_offset: int, now_ms: int, index_interval_bytes: int) -> Segment: ...

    @property
    def segments(self) -> Sequence[Segment]:
        return self._segments

    @property
    def active(self) -> Segment | None:
        return self._segments[-1] if self._segments else None

    def roll(self, base_offset: int, now_ms: int, index_interval_bytes: int) -> Segment:
        active = self.active
        if active is not None and active.batch_count == 0:
            # an empty active segment is reused rather than leaving an empty one behind
            self._segments.pop()
            self._base_offsets.pop()
        segment = self._new_segment(base_offset, now_ms, index_interval_bytes)
        self._segments.append(segment)
        self._base_offsets.append(base_offset)
        return segment

    def segment_for(self, offset: int) -> Segment | None:
        """The segment whose range would hold ``offset`` (greatest base offset <= it)."""
        i = bisect_right(self._base_offsets, offset) - 1
        return self._segments[i] if i >= 0 else None

    def segments_from(self, offset: int) -> Iterator[Segment]:
        i = max(0, bisect_right(self._base_offsets, offset) - 1)
        yield from self._segments[i:]

    def delete_oldest(self) -> Segment:
        """Drop the oldest segment (retention's seam); the active segment is never dropped."""
        if len(self._segments) <= 1:
            raise ValueError("cannot delete the active segment")
        self._base_offsets.pop(0)
        return self._segments.pop(0)

    def truncate_to(self, offset: int) -> None:
        while self._segments and self._segments[-1].base_offset > offset and len(self._segments) > 1:
            self._segments.pop()
            self._base_offsets.pop()
        if self._segments:
            self._segments[-1].truncate_to(offset)

    @property
    def size_bytes(self) -> int:
        return sum(s.size_bytes for s in self._segments)

    def rewrite_segments(self, old: Sequence[Segment], cleaned: Sequence[CleanedSegment],
                         now_ms: int, index_interval_bytes: int) -> None:
        """Replace the consecutive non-active segments ``old`` with ``cleaned`` (compaction).

        Batches keep their offsets, so the new segments may have gaps; a cleaned segment
        keeps the base offset of the first segment it replaces.
        """
        first = self._check_replaceable(old)
        fresh: list[Segment] = []
        for spec in cleaned:
            segment = self._new_segment(spec.base_offset, now_ms, index_interval_bytes)
            for data, base, last, max_ts in spec.batches:
                segment.append(data, base_offset=base, last_offset=last, max_timestamp=max_ts)
            fresh.append(segment)
        self._splice(first, len(old), fresh)

    def _check_replaceable(self, old: Sequence[Segment]) -> int:
        if not old:
            raise ValueError("nothing to replace")
        first = next((i for i, s in enumerate(self._segments) if s is old[0]), -1)
        if first < 0 or self._segments[first:first + len(old)] != list(old):
            raise ValueError("the segments to replace are not a run of this store's segments")
        if first + len(old) >= len(self._segments):
            raise ValueError("the active segment is never rewritten")
        return first

    def _splice(self, first: int, count: int, fresh: Sequence[Segment]) -> None:
        self._segments[first:first + count] = fresh
        self._base_offsets[first:first + count] = [s.base_offset for s in fresh]


@dataclass(frozen=True)
class CleanedSegment:
    """One segment's worth of compacted batches: (bytes, base, last, max timestamp) each."""

    base_offset: int
    batches: Sequence[tuple[bytes, int, int, int]]
