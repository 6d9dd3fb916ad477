"""Reading a segment back at start: batch-header scan, CRC validation, index checks and rebuilds.

A ``.log`` is trusted only up to its last sound batch: a batch that runs past the end
of the file (a torn write), has an impossible header, or fails its CRC ends the
segment, and the store truncates there.  Index files are kept when every entry points
at a batch start the scan found; otherwise they are rebuilt from the scan with the
same rule the appends use (first batch, then one entry per ``index.interval.bytes``).
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import crc32c

from streamclient.broker.log.disk_files import (
    DiskFormatError,
    decode_offset_entries,
    decode_time_entries,
)

# offsets below are within the 12-byte-less remainder of a batch (after base offset and length)
_LENGTH = struct.Struct(">qi")
_REST_MIN = 49  # a magic-2 batch header is 61 bytes, 12 of them before the length's end
_MAGIC_AT = 4
_CRC_AT = 5
_CRC_FROM = 9
_DELTA_AT = 11
_MAX_TS_AT = 23
_COUNT_AT = 45
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT64 = struct.Struct(">q")
_INT32_MAX = (1 << 31) - 1


@dataclass(frozen=True)
class ScannedBatch:
    position: int
    size: int
    base_offset: int
    last_offset: int
    max_timestamp: int
    record_count: int


@dataclass
class SegmentScan:
    """What a scan of one ``.log`` found: the sound batches and where soundness ended."""

    batches: list[ScannedBatch] = field(default_factory=list)
    valid_bytes: int = 0
    file_bytes: int = 0
    # why the scan stopped before the end of the file (None: every byte is sound)
    problem: str | None = None


def scan_log(path: Path, base_offset: int, *, check_crc: bool) -> SegmentScan:
    """Walk the batches of ``path`` from its start, stopping at the first unsound one."""
    scan = SegmentScan()
    with open(path, "rb", buffering=1 << 20) as f:
        f.seek(0, 2)
        scan.file_bytes = end = f.tell()
        f.seek(0)
        position = 0
        expected = base_offset
        while position < end:
            problem = _read_one(f, position, end, expected, base_offset, check_crc, scan)
            if problem is not None:
                scan.problem = f"at byte {position}: {problem}"
                break
            last = scan.batches[-1]
            position += last.size
            expected = last.last_offset + 1
        scan.valid_bytes = position
    return scan


def _read_one(f: BinaryIO, position: int, end: int, expected: int, segment_base: int,
              check_crc: bool, scan: SegmentScan) -> str | None:
    read = f.read
    head = read(12)
    if len(head) < 12:
        return f"{len(head)} bytes cannot hold a batch's offset and length"
    batch_base, length = _LENGTH.unpack(head)
    if length < _REST_MIN:
        return f"batch length {length} is too small"
    if position + 12 + length > end:
        return f"batch of {12 + length} bytes runs past the end of the file ({end} bytes)"
    rest = read(length if check_crc else _REST_MIN)
    if not check_crc:
        f.seek(position + 12 + length)
    if rest[_MAGIC_AT] != 2:
        return f"magic {rest[_MAGIC_AT]} is not 2"
    if check_crc:
        (stored,) = _UINT32.unpack_from(rest, _CRC_AT)
        actual = crc32c.crc32c(memoryview(rest)[_CRC_FROM:])
        if stored != actual:
            return f"CRC {stored:#010x} does not match the contents ({actual:#010x})"
    (delta,) = _INT32.unpack_from(rest, _DELTA_AT)
    if batch_base < expected or delta < 0:
        return f"offsets {batch_base}+{delta} do not follow {expected - 1}"
    if batch_base + delta - segment_base > _INT32_MAX:
        return f"offset {batch_base + delta} is too far from the segment base {segment_base}"
    (max_ts,) = _INT64.unpack_from(rest, _MAX_TS_AT)
    (count,) = _INT32.unpack_from(rest, _COUNT_AT)
    scan.batches.append(ScannedBatch(position, 12 + length, batch_base, batch_base + delta,
                                     max_ts, count))
    return None


@dataclass
class SegmentIndexes:
    """The index entries and running figures a segment needs, from a scan."""

    offset_entries: list[tuple[int, int]]
    # (timestamp, absolute offset), the in-memory TimeIndex form
    time_entries: list[tuple[int, int]]
    bytes_since_index: int
    max_timestamp: int
    offset_of_max_timestamp: int
    # whether the files on disk did not match and were rebuilt
    rebuilt: bool = False


def build_indexes(base_offset: int, batches: list[ScannedBatch],
                  index_interval_bytes: int) -> SegmentIndexes:
    """The entries appends would have produced for ``batches``."""
    offsets: list[tuple[int, int]] = []
    times: list[tuple[int, int]] = []
    since = 0
    max_ts, offset_of_max = -1, -1
    for i, b in enumerate(batches):
        if b.max_timestamp > max_ts:
            max_ts, offset_of_max = b.max_timestamp, b.base_offset
        if i == 0 or since >= index_interval_bytes:
            offsets.append((b.base_offset - base_offset, b.position))
            if not times or max_ts > times[-1][0]:
                times.append((max_ts, offset_of_max))
            since = 0
        since += b.size
    return SegmentIndexes(offsets, times, since, max_ts, offset_of_max)


def load_indexes(base_offset: int, batches: list[ScannedBatch], index_path: Path,
                 time_index_path: Path, index_interval_bytes: int) -> SegmentIndexes:
    """The index files' entries when they agree with ``batches``, else rebuilt ones."""
    rebuilt = build_indexes(base_offset, batches, index_interval_bytes)
    try:
        offsets = decode_offset_entries(index_path.read_bytes())
        times = [(ts, base_offset + rel)
                 for ts, rel in decode_time_entries(time_index_path.read_bytes())]
    except (OSError, DiskFormatError):
        rebuilt.rebuilt = True
        return rebuilt
    starts = {b.position: b.base_offset for b in batches}
    bases = {b.base_offset for b in batches}
    offsets_ok = bool(offsets) == bool(batches) and all(
        starts.get(pos) == base_offset + rel for rel, pos in offsets) and all(
        a[0] < b[0] for a, b in itertools.pairwise(offsets))
    times_ok = all(off in bases and ts <= rebuilt.max_timestamp for ts, off in times) and all(
        a[0] < b[0] and a[1] <= b[1] for a, b in itertools.pairwise(times))
    if not (offsets_ok and times_ok):
        rebuilt.rebuilt = True
        return rebuilt
    since = 0
    if offsets:
        last_indexed = offsets[-1][1]
        since = sum(b.size for b in batches if b.position >= last_indexed)
    return SegmentIndexes(offsets, times, since, rebuilt.max_timestamp,
                          rebuilt.offset_of_max_timestamp)
