"""Leader epoch -> start offset (Kafka's leader-epoch checkpoint), for OffsetForLeaderEpoch."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

UNDEFINED_EPOCH = -1
UNDEFINED_OFFSET = -1


class LeaderEpochCache:
    def __init__(self) -> None:
        self._epochs: list[int] = []
        self._start_offsets: list[int] = []

    @property
    def latest_epoch(self) -> int:
        return self._epochs[-1] if self._epochs else UNDEFINED_EPOCH

    def assign(self, epoch: int, start_offset: int) -> None:
        """Record that ``epoch`` begins at ``start_offset`` (ignored unless it is newer)."""
        if self._epochs and epoch <= self._epochs[-1]:
            return
        # an epoch that wrote nothing is superseded by one starting at the same offset
        while self._start_offsets and self._start_offsets[-1] >= start_offset:
            self._epochs.pop()
            self._start_offsets.pop()
        self._epochs.append(epoch)
        self._start_offsets.append(start_offset)

    def end_offset_for(self, requested: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end offset) as Kafka's ``LeaderEpochFileCache.endOffsetFor`` answers.

        The end offset of an epoch is the start of the next higher epoch, or the log end
        for the latest one; the epoch returned is the largest known one <= requested.
        """
        if requested == UNDEFINED_EPOCH or not self._epochs:
            return UNDEFINED_EPOCH, UNDEFINED_OFFSET
        if requested == self._epochs[-1]:
            return requested, log_end_offset
        higher = bisect_right(self._epochs, requested)
        if higher >= len(self._epochs):
            return UNDEFINED_EPOCH, UNDEFINED_OFFSET
        floor = bisect_right(self._epochs, requested) - 1
        if floor < 0:
            return requested, self._start_offsets[higher]
        return self._epochs[floor], self._start_offsets[higher]

    def epoch_for_offset(self, offset: int) -> int:
        """The epoch that wrote ``offset`` (the latest one starting at or before it)."""
        i = bisect_right(self._start_offsets, offset) - 1
        return self._epochs[i] if i >= 0 else UNDEFINED_EPOCH

    def truncate_from_start(self, log_start_offset: int) -> None:
        """Keep the epoch covering ``log_start_offset``, moved up to start there."""
        i = bisect_left(self._start_offsets, log_start_offset)
        if i < len(self._start_offsets) and self._start_offsets[i] == log_start_offset:
            keep = i
        else:
            keep = max(0, i - 1)
        del self._epochs[:keep]
        del self._start_offsets[:keep]
        if self._start_offsets and self._start_offsets[0] < log_start_offset:
            self._start_offsets[0] = log_start_offset

    def truncate_from_end(self, end_offset: int) -> None:
        """Forget the epochs that start at or after ``end_offset`` (the log was cut there:
        they wrote nothing that is left)."""
        i = bisect_left(self._start_offsets, end_offset)
        del self._epochs[i:]
        del self._start_offsets[i:]

    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self._epochs, self._start_offsets, strict=True))
