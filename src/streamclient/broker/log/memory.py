"""``MemoryLogStore``: segments held in ``bytearray``s (the default store)."""

from __future__ import annotations

from streamclient.broker.log.store import LogStore, Segment


class MemorySegment(Segment):
    def __init__(self, base_offset: int, created_ms: int, index_interval_bytes: int) -> None:
        super().__init__(base_offset, created_ms, index_interval_bytes)
        self._data = bytearray()

    @property
    def size_bytes(self) -> int:
        return len(self._data)

    def _read(self, position: int, size: int) -> bytes:
        # a copy, not a lasting memoryview: a live view would forbid the bytearray from
        # growing; the short-lived view only saves the intermediate bytearray slice
        with memoryview(self._data) as view:
            return bytes(view[position:position + size])

    def _write(self, data: bytes) -> None:
        self._data += data

    def _truncate_bytes(self, position: int) -> None:
        del self._data[position:]


class MemoryLogStore(LogStore):
    def _new_segment(self, base_offset: int, now_ms: int, index_interval_bytes: int) -> Segment:
        return MemorySegment(base_offset, now_ms, index_interval_bytes)
