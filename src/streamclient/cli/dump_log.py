"""``streamclient dump-log PATH…``: print the batches and index entries of disk log segments.

In the spirit of Kafka's DumpLogSegments: a ``.log`` prints one line per batch (offsets,
count, producer fields, flags, codec, CRC and whether it is valid), ``.index`` and
``.timeindex`` print their entries checked against the segment's ``.log``, and a
partition folder prints all of its segments in order.
"""

from __future__ import annotations

import argparse
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import crc32c

from streamclient.broker.log.disk_files import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    DiskFormatError,
    decode_offset_entries,
    decode_time_entries,
)
from streamclient.protocol.records import RecordBatch
from streamclient.protocol.records.compression import Compression

__all__ = ["dump_path", "register", "run_dump_log"]

_HEADER = struct.Struct(">qiibIhiqqqhii")
_LOG_OVERHEAD = 12
_CRC_FROM = 21


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dump-log", help="print the batches and index entries of log segments",
        description="Print the record batches of .log files and the entries of .index and "
                    ".timeindex files (a partition folder: every segment in it).")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="a .log, .index or .timeindex file, or a partition folder")
    parser.add_argument("--records", action="store_true",
                        help="also print every record (offset, timestamp, key and value sizes)")
    parser.set_defaults(handler=run_dump_log)


def run_dump_log(args: argparse.Namespace) -> int:
    status = 0
    for raw in args.paths:
        try:
            if not dump_path(Path(raw), sys.stdout, records=args.records):
                status = 1
        except (OSError, DiskFormatError) as exc:
            print(f"streamclient dump-log: {raw}: {exc}", file=sys.stderr)
            status = 2
    return status


def dump_path(path: Path, out: TextIO, *, records: bool = False) -> bool:
    """Print ``path``; False when something in it is invalid."""
    if path.is_dir():
        ok = True
        logs = sorted(p for p in path.iterdir() if p.name.endswith(LOG_SUFFIX))
        for log_path in logs:
            ok = dump_path(log_path, out, records=records) and ok
            for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):
                index = log_path.with_name(log_path.name[:-len(LOG_SUFFIX)] + suffix)
                if index.exists():
                    ok = dump_path(index, out) and ok
        return ok
    if path.name.endswith(LOG_SUFFIX):
        return _dump_log(path, out, records)
    if path.name.endswith(INDEX_SUFFIX):
        return _dump_offset_index(path, out)
    if path.name.endswith(TIME_INDEX_SUFFIX):
        return _dump_time_index(path, out)
    raise DiskFormatError("not a .log, .index or .timeindex file, nor a folder")


def _base_offset(path: Path) -> int:
    stem = path.name.split(".", 1)[0]
    if not stem.isdigit():
        raise DiskFormatError("segment files are named by their 20-digit base offset")
    return int(stem)


@dataclass(frozen=True)
class _Batch:
    position: int
    data: bytes
    valid: bool


def _batches(data: bytes) -> Iterator[_Batch | str]:
    """Every batch of a segment's bytes, then a message if the tail is unreadable."""
    position = 0
    while position < len(data):
        if len(data) - position < _HEADER.size:
            yield f"{len(data) - position} trailing bytes cannot hold a batch header"
            return
        length = struct.unpack_from(">i", data, position + 8)[0]
        size = _LOG_OVERHEAD + length
        if length < _HEADER.size - _LOG_OVERHEAD or position + size > len(data):
            yield (f"batch at byte {position} claims {size} bytes, "
                   f"{len(data) - position} remain")
            return
        chunk = data[position:position + size]
        stored_crc = struct.unpack_from(">I", chunk, 17)[0]
        valid = chunk[16] == 2 and crc32c.crc32c(memoryview(chunk)[_CRC_FROM:]) == stored_crc
        yield _Batch(position, chunk, valid)
        position += size


def _dump_log(path: Path, out: TextIO, records: bool) -> bool:
    base = _base_offset(path)
    data = path.read_bytes()
    out.write(f"Dumping {path}\nStarting offset: {base}\n")
    ok = True
    for item in _batches(data):
        if isinstance(item, str):
            out.write(f"error: {item}\n")
            return False
        (base_offset, _, epoch, magic, crc, attributes, delta, _, max_ts, pid, pepoch, seq,
         count) = _HEADER.unpack_from(item.data, 0)
        last_seq = -1 if seq < 0 else (seq + delta) % (1 << 31)
        codec = attributes & 0x07
        codec_name = Compression(codec).name.lower() if codec <= 4 else f"unknown({codec})"
        ts_type = "LogAppendTime" if attributes & 0x08 else "CreateTime"
        out.write(
            f"baseOffset: {base_offset} lastOffset: {base_offset + delta} count: {count} "
            f"baseSequence: {seq} lastSequence: {last_seq} producerId: {pid} "
            f"producerEpoch: {pepoch} partitionLeaderEpoch: {epoch} "
            f"isTransactional: {_flag(attributes & 0x10)} isControl: {_flag(attributes & 0x20)} "
            f"deleteHorizonMs: {'set' if attributes & 0x40 else 'none'} "
            f"position: {item.position} {ts_type}: {max_ts} size: {len(item.data)} "
            f"magic: {magic} compresscodec: {codec_name} crc: {crc:#010x} "
            f"isvalid: {_flag(item.valid)}\n")
        ok = ok and item.valid
        if records and item.valid:
            for record in RecordBatch(item.data):
                out.write(f"| offset: {record.offset} {ts_type}: {record.timestamp} "
                          f"keySize: {_size(record.key)} valueSize: {_size(record.value)} "
                          f"headerKeys: [{','.join(k for k, _ in record.headers)}]\n")
    return ok


def _dump_offset_index(path: Path, out: TextIO) -> bool:
    base = _base_offset(path)
    entries = decode_offset_entries(path.read_bytes())
    starts = _batch_starts(path)
    out.write(f"Dumping {path}\n")
    ok = True
    for rel, position in entries:
        out.write(f"offset: {base + rel} position: {position}\n")
        if starts is not None and starts.get(position) != base + rel:
            out.write(f"error: no batch starting at offset {base + rel} at byte {position}\n")
            ok = False
    return ok


def _dump_time_index(path: Path, out: TextIO) -> bool:
    base = _base_offset(path)
    entries = decode_time_entries(path.read_bytes())
    starts = _batch_starts(path)
    bases = None if starts is None else set(starts.values())
    out.write(f"Dumping {path}\n")
    ok = True
    previous = -1
    for ts, rel in entries:
        out.write(f"timestamp: {ts} offset: {base + rel}\n")
        if ts <= previous or (bases is not None and base + rel not in bases):
            out.write(f"error: entry ({ts}, {base + rel}) does not match the segment\n")
            ok = False
        previous = ts
    return ok


def _batch_starts(index_path: Path) -> dict[int, int] | None:
    """Byte position -> base offset of the batches of the index's ``.log``, if present."""
    log_path = index_path.with_name(index_path.name.split(".", 1)[0] + LOG_SUFFIX)
    if not log_path.exists():
        return None
    return {b.position: _HEADER.unpack_from(b.data, 0)[0]
            for b in _batches(log_path.read_bytes()) if isinstance(b, _Batch)}


def _flag(value: object) -> str:
    return "true" if value else "false"


def _size(value: bytes | None) -> int:
    return -1 if value is None else len(value)
