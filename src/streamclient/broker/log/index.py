"""Sparse offset and time indexes of one segment, shaped like Kafka's ``.index``/``.timeindex``.

Both hold entries in append order, so lookups are a bisect; the disk store keeps the
same entries in fixed-width files and reuses this logic.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right


class OffsetIndex:
    """Relative offset -> byte position of the batch that starts there.

    Sparse: an entry is added every ``index.interval.bytes`` of appended data, so a
    lookup lands on the greatest indexed batch at or before the target and the reader
    scans forward from there.
    """

    __slots__ = ("_positions", "_relative_offsets")

    def __init__(self) -> None:
        self._relative_offsets: list[int] = []
        self._positions: list[int] = []

    def __len__(self) -> int:
        return len(self._relative_offsets)

    def append(self, relative_offset: int, position: int) -> None:
        if self._relative_offsets and relative_offset <= self._relative_offsets[-1]:
            raise ValueError(
                f"offset index entries must grow: {relative_offset} after "
                f"{self._relative_offsets[-1]}")
        self._relative_offsets.append(relative_offset)
        self._positions.append(position)

    def lookup(self, relative_offset: int) -> tuple[int, int]:
        """(relative offset, position) of the greatest entry <= ``relative_offset``, else (0, 0)."""
        i = bisect_right(self._relative_offsets, relative_offset) - 1
        if i < 0:
            return 0, 0
        return self._relative_offsets[i], self._positions[i]

    def truncate_to(self, relative_offset: int) -> None:
        """Drop entries at or above ``relative_offset`` (log truncation)."""
        i = bisect_left(self._relative_offsets, relative_offset)
        del self._relative_offsets[i:]
        del self._positions[i:]

    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self._relative_offsets, self._positions, strict=True))


class TimeIndex:
    """Timestamp -> offset, with timestamps strictly growing.

    An entry (T, O) says: every batch before the one at offset O has a max timestamp
    <= T, and the batch at O carries T.  A lookup for target t takes the greatest
    entry with T < t: nothing at or before its offset can answer, so the scan starts
    there.
    """

    __slots__ = ("_offsets", "_timestamps")

    def __init__(self) -> None:
        self._timestamps: list[int] = []
        self._offsets: list[int] = []

    def __len__(self) -> int:
        return len(self._timestamps)

    @property
    def last_timestamp(self) -> int:
        return self._timestamps[-1] if self._timestamps else -1

    def maybe_append(self, timestamp: int, offset: int) -> bool:
        """Add (timestamp, offset) when the timestamp is a new maximum."""
        if self._timestamps and timestamp <= self._timestamps[-1]:
            return False
        self._timestamps.append(timestamp)
        self._offsets.append(offset)
        return True

    def lookup(self, timestamp: int) -> int | None:
        """Offset to scan from for the first batch with max timestamp >= ``timestamp``.

        ``None`` means scan from the segment's start.
        """
        i = bisect_left(self._timestamps, timestamp) - 1
        if i < 0:
            return None
        return self._offsets[i]

    def truncate_to(self, offset: int) -> None:
        i = bisect_left(self._offsets, offset)
        del self._timestamps[i:]
        del self._offsets[i:]

    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self._timestamps, self._offsets, strict=True))
