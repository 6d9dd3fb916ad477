"""``DiskLogStore``: a partition's segments as ``.log``/``.index``/``.timeindex`` files.

The shared ``Segment`` code keeps the sparse indexes in memory and does every lookup
(greatest entry at or before the target, then a header scan forward); this store adds
the files under it: each batch is appended to the ``.log`` byte for byte, and every
index entry the segment adds is appended to its index file in Kafka's binary layout.
On open the store reads the files back through ``disk_recovery`` (torn or corrupt
tails are cut, bad indexes rebuilt).  Writes go to the page cache; ``flush.messages``
and ``flush.ms`` force fsyncs, as in Kafka.
"""

from __future__ import annotations

import logging
import os
import struct
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streamclient.broker.log.disk_files import (
    CLEANED_SUFFIX,
    DELETED_SUFFIX,
    LOG_SUFFIX,
    SWAP_SUFFIX,
    encode_offset_entries,
    encode_time_entries,
    segment_paths,
)
from streamclient.broker.log.disk_recovery import (
    SegmentIndexes,
    SegmentScan,
    load_indexes,
    scan_log,
)
from streamclient.broker.log.index import OffsetIndex, TimeIndex
from streamclient.broker.log.store import CleanedSegment, LogStore, Segment

__all__ = ["DiskLogStore", "DiskSegment", "FileCache", "RecoveryReport"]

log = logging.getLogger("streamclient.broker.log")

_RECORD_COUNT = struct.Struct(">i")
_RECORD_COUNT_AT = 57
_NEVER = (1 << 63) - 1


class FileCache:
    """Caps the ``.log`` descriptors held open across every store of a log dir.

    Active segments are written all the time and old ones read now and then; the least
    recently used descriptors are closed beyond ``limit`` and reopened on demand.
    """

    def __init__(self, limit: int = 512) -> None:
        self.limit = limit
        self._open: OrderedDict[int, DiskSegment] = OrderedDict()

    def touch(self, segment: DiskSegment) -> None:
        key = id(segment)
        if key in self._open:
            self._open.move_to_end(key)
            return
        self._open[key] = segment
        while len(self._open) > self.limit:
            _, oldest = self._open.popitem(last=False)
            oldest.close()

    def forget(self, segment: DiskSegment) -> None:
        self._open.pop(id(segment), None)


class DiskSegment(Segment):
    def __init__(self, directory: Path, base_offset: int, created_ms: int,
                 index_interval_bytes: int, files: FileCache, *,
                 on_append: Callable[[int], None] | None = None, suffix: str = "",
                 create: bool = True) -> None:
        super().__init__(base_offset, created_ms, index_interval_bytes)
        self.directory = directory
        self.log_path, self.index_path, self.time_index_path = segment_paths(
            directory, base_offset, suffix)
        self._files = files
        self._on_append = on_append
        self._fd: int | None = None
        self._size = 0
        self.dirty = False
        if create:
            for path in (self.log_path, self.index_path, self.time_index_path):
                with open(path, "wb"):
                    pass

    # -- bytes --------------------------------------------------------------------------------
    def _descriptor(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.log_path, os.O_RDWR)
        self._files.touch(self)
        return self._fd

    @property
    def size_bytes(self) -> int:
        return self._size

    def _read(self, position: int, size: int) -> bytes:
        size = max(0, min(size, self._size - position))
        fd = self._descriptor()
        data = os.pread(fd, size, position)
        while len(data) < size:  # pread may return short on some filesystems
            more = os.pread(fd, size - len(data), position + len(data))
            if not more:
                raise OSError(f"{self.log_path} ended at {position + len(data)} bytes")
            data += more
        return data

    def _write(self, data: bytes) -> None:
        fd = self._descriptor()
        written = 0
        view = memoryview(data)
        while written < len(data):
            written += os.pwrite(fd, view[written:], self._size + written)
        self._size += len(data)
        self.dirty = True

    def _truncate_bytes(self, position: int) -> None:
        os.ftruncate(self._descriptor(), position)
        self._size = position
        self.dirty = True

    # -- indexes follow the shared code's in-memory entries ----------------------------------
    def append(self, batch: bytes, *, base_offset: int, last_offset: int, max_timestamp: int) -> None:
        offsets_before, times_before = len(self.offset_index), len(self.time_index)
        super().append(batch, base_offset=base_offset, last_offset=last_offset,
                       max_timestamp=max_timestamp)
        if len(self.offset_index) > offsets_before:
            _append_file(self.index_path,
                         encode_offset_entries(self.offset_index.entries()[offsets_before:]))
        if len(self.time_index) > times_before:
            _append_file(self.time_index_path, encode_time_entries(
                (ts, off - self.base_offset)
                for ts, off in self.time_index.entries()[times_before:]))
        if self._on_append is not None:
            (count,) = _RECORD_COUNT.unpack_from(batch, _RECORD_COUNT_AT)
            self._on_append(max(count, 1))

    def truncate_to(self, offset: int) -> None:
        super().truncate_to(offset)
        self.write_indexes()

    def write_indexes(self) -> None:
        """Rewrite both index files from the in-memory entries."""
        self.index_path.write_bytes(encode_offset_entries(self.offset_index.entries()))
        self.time_index_path.write_bytes(encode_time_entries(
            (ts, off - self.base_offset) for ts, off in self.time_index.entries()))

    def restore(self, scan: SegmentScan, indexes: SegmentIndexes) -> None:
        """Take the figures of a segment read back from disk."""
        self._size = scan.valid_bytes
        self.offset_index = OffsetIndex()
        for rel, pos in indexes.offset_entries:
            self.offset_index.append(rel, pos)
        self.time_index = TimeIndex()
        for ts, off in indexes.time_entries:
            self.time_index.maybe_append(ts, off)
        self._bytes_since_index = indexes.bytes_since_index
        self.batch_count = len(scan.batches)
        self.next_offset = scan.batches[-1].last_offset + 1 if scan.batches else self.base_offset
        self.max_timestamp = indexes.max_timestamp
        self.offset_of_max_timestamp = indexes.offset_of_max_timestamp
        if indexes.rebuilt:
            self.write_indexes()

    # -- files ----------------------------------------------------------------------------------
    def flush(self) -> None:
        if not self.dirty:
            return
        os.fsync(self._descriptor())
        for path in (self.index_path, self.time_index_path):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self.dirty = False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._files.forget(self)

    def rename(self, suffix: str) -> None:
        """Move the three files to the names ending in ``suffix`` ("" = the final names)."""
        new = segment_paths(self.directory, self.base_offset, suffix)
        for old_path, new_path in zip(
                (self.log_path, self.index_path, self.time_index_path), new, strict=True):
            os.replace(old_path, new_path)
        self.log_path, self.index_path, self.time_index_path = new

    def delete(self) -> None:
        self.close()
        for path in (self.log_path, self.index_path, self.time_index_path):
            path.unlink(missing_ok=True)


def _append_file(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


@dataclass
class RecoveryReport:
    """What opening a partition directory had to repair (for logs, tests and dump-log)."""

    truncated: list[tuple[int, str]] = field(default_factory=list)
    rebuilt_indexes: list[int] = field(default_factory=list)
    deleted_segments: list[int] = field(default_factory=list)
    completed_swaps: list[int] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.truncated or self.rebuilt_indexes or self.deleted_segments)


class DiskLogStore(LogStore):
    """The segment files of one partition directory."""

    def __init__(self, directory: Path, *, now_ms: int = 0, index_interval_bytes: int = 4096,
                 check_all_crcs: bool = False, files: FileCache | None = None) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.files = files or FileCache()
        self.flush_messages = _NEVER
        self.flush_ms = _NEVER
        self.last_flush_ms = now_ms
        self._unflushed = 0
        self.recovery = RecoveryReport()
        self._open_existing(now_ms, index_interval_bytes, check_all_crcs)

    # -- opening -------------------------------------------------------------------------------
    def _open_existing(self, now_ms: int, interval: int, check_all_crcs: bool) -> None:
        self._finish_interrupted_cleaning()
        bases = sorted(int(p.name[:-len(LOG_SUFFIX)]) for p in self.directory.iterdir()
                       if p.name.endswith(LOG_SUFFIX) and p.name[:-len(LOG_SUFFIX)].isdigit())
        self._remove_orphan_indexes(set(bases))
        for i, base in enumerate(bases):
            last = i == len(bases) - 1
            segment = DiskSegment(self.directory, base, now_ms, interval, self.files,
                                  on_append=self._appended, create=False)
            scan = scan_log(segment.log_path, base, check_crc=check_all_crcs or last)
            if scan.problem is not None:
                log.warning("%s: segment %d is damaged %s; truncating it to %d bytes",
                            self.directory, base, scan.problem, scan.valid_bytes)
                self.recovery.truncated.append((base, scan.problem))
                os.truncate(segment.log_path, scan.valid_bytes)
            indexes = load_indexes(base, scan.batches, segment.index_path,
                                   segment.time_index_path, interval)
            if scan.problem is not None:
                indexes.rebuilt = True
            if indexes.rebuilt:
                self.recovery.rebuilt_indexes.append(base)
            segment.restore(scan, indexes)
            if not scan.batches and self._segments:
                # an empty segment after others carries nothing (a crash right after a roll)
                segment.delete()
                self.recovery.deleted_segments.append(base)
            else:
                self._segments.append(segment)
                self._base_offsets.append(base)
            if scan.problem is not None:
                # what follows a hole cannot be trusted to continue the offsets
                for later in bases[i + 1:]:
                    DiskSegment(self.directory, later, now_ms, interval, self.files,
                                create=False).delete()
                    self.recovery.deleted_segments.append(later)
                break

    def _finish_interrupted_cleaning(self) -> None:
        """Drop unfinished ``.cleaned`` work; complete ``.swap`` renames (compaction)."""
        swaps: list[int] = []
        for path in list(self.directory.iterdir()):
            name = path.name
            if name.endswith((CLEANED_SUFFIX, DELETED_SUFFIX, ".tmp")):
                path.unlink()
            elif name.endswith(LOG_SUFFIX + SWAP_SUFFIX):
                swaps.append(int(name.split(".", 1)[0]))
        if not swaps:
            return
        regular = sorted(int(p.name[:-len(LOG_SUFFIX)]) for p in self.directory.iterdir()
                         if p.name.endswith(LOG_SUFFIX))
        swaps.sort()
        for n, base in enumerate(swaps):
            # a swap replaces the old segments from its base up to the next swap's base
            # (or up to the first old segment past its own last offset)
            limit = swaps[n + 1] if n + 1 < len(swaps) else self._swap_end(base)
            for old in regular:
                if base <= old < limit:
                    DiskSegment(self.directory, old, 0, 4096, self.files, create=False).delete()
        for base in swaps:
            segment = DiskSegment(self.directory, base, 0, 4096, self.files,
                                  suffix=SWAP_SUFFIX, create=False)
            segment.rename("")
            self.recovery.completed_swaps.append(base)

    def _swap_end(self, base: int) -> int:
        swap = DiskSegment(self.directory, base, 0, 4096, self.files, suffix=SWAP_SUFFIX,
                           create=False)
        scan = scan_log(swap.log_path, base, check_crc=False)
        return scan.batches[-1].last_offset + 1 if scan.batches else base + 1

    def _remove_orphan_indexes(self, bases: set[int]) -> None:
        for path in list(self.directory.iterdir()):
            stem, _, ext = path.name.partition(".")
            if ext in ("index", "timeindex") and stem.isdigit() and int(stem) not in bases:
                path.unlink()

    # -- LogStore ------------------------------------------------------------------------------
    def _new_segment(self, base_offset: int, now_ms: int, index_interval_bytes: int) -> Segment:
        return DiskSegment(self.directory, base_offset, now_ms, index_interval_bytes, self.files,
                           on_append=self._appended)

    def roll(self, base_offset: int, now_ms: int, index_interval_bytes: int) -> Segment:
        active = self.active
        if isinstance(active, DiskSegment) and active.batch_count == 0:
            # the base class drops an empty active segment; its files go with it
            active.delete()
        return super().roll(base_offset, now_ms, index_interval_bytes)

    def delete_oldest(self) -> Segment:
        segment = super().delete_oldest()
        if isinstance(segment, DiskSegment):
            segment.delete()
        return segment

    def truncate_to(self, offset: int) -> None:
        while len(self._segments) > 1 and self._segments[-1].base_offset > offset:
            segment = self._segments.pop()
            self._base_offsets.pop()
            if isinstance(segment, DiskSegment):
                segment.delete()
        if self._segments:
            self._segments[-1].truncate_to(offset)

    def rewrite_segments(self, old: Sequence[Segment], cleaned: Sequence[CleanedSegment],
                         now_ms: int, index_interval_bytes: int) -> None:
        first = self._check_replaceable(old)
        fresh: list[DiskSegment] = []
        for spec in cleaned:
            segment = DiskSegment(self.directory, spec.base_offset, now_ms, index_interval_bytes,
                                  self.files, on_append=None, suffix=CLEANED_SUFFIX)
            for data, base, last, max_ts in spec.batches:
                segment.append(data, base_offset=base, last_offset=last, max_timestamp=max_ts)
            segment.flush()
            fresh.append(segment)
        # from here a crash is finished by recovery: the swaps are complete segments
        for segment in fresh:
            segment.rename(SWAP_SUFFIX)
        for replaced in old:
            if isinstance(replaced, DiskSegment):
                replaced.delete()
        for segment in fresh:
            segment.rename("")
            segment._on_append = self._appended
        self._splice(first, len(old), fresh)

    # -- flushing ------------------------------------------------------------------------------
    def _appended(self, records: int) -> None:
        self._unflushed += records
        if self._unflushed >= self.flush_messages:
            self.flush()

    def flush(self, now_ms: int | None = None) -> None:
        for segment in self._segments:
            if isinstance(segment, DiskSegment):
                segment.flush()
        self._unflushed = 0
        if now_ms is not None:
            self.last_flush_ms = now_ms

    def maybe_flush(self, now_ms: int) -> None:
        """``flush.ms``: fsync when the oldest unflushed write is that old."""
        if self._unflushed and now_ms - self.last_flush_ms >= self.flush_ms:
            self.flush(now_ms)
        elif not self._unflushed:
            self.last_flush_ms = now_ms

    def close(self) -> None:
        for segment in self._segments:
            if isinstance(segment, DiskSegment):
                segment.close()

    def delete_all(self) -> None:
        for segment in self._segments:
            if isinstance(segment, DiskSegment):
                segment.delete()
        self._segments.clear()
        self._base_offsets.clear()
