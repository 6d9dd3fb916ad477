"""Log compaction (``cleanup.policy=compact``): keep the latest record of every key.

Works on any ``LogStore`` through ``rewrite_segments``.  The rules follow Kafka's cleaner:

* only segments wholly below the first uncleanable offset are cleaned: never the active
  segment, nothing at or above the last stable offset or the high watermark, nothing
  younger than ``min.compaction.lag.ms``;
* a record survives when it is the latest of its key in that range (keyless records
  are kept); offsets never change, so the cleaned log has gaps;
* a tombstone (null value) that is the latest of its key survives until its batch is
  older than ``delete.retention.ms``;
* records of aborted transactions are removed; a COMMIT/ABORT marker stays while any
  record of its transaction does, and otherwise until it is ``delete.retention.ms`` old
  (so replaying the log never sees a transaction without its end);
* the last batch of each producer id stays, emptied if need be, so the producer's
  sequence state can still be rebuilt from the log (Kafka keeps it for the same reason).

A batch that loses some records is rebuilt with the same header fields (offsets, first
and max timestamps, producer fields, codec); one that keeps all is copied byte for byte.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import crc32c

from streamclient.broker.log import batches as log_batches
from streamclient.broker.log.partition import PartitionLog
from streamclient.broker.log.store import CleanedSegment, Segment
from streamclient.protocol.records import RecordBatch
from streamclient.protocol.records.batch import Record
from streamclient.protocol.records.compression import codec_for, compress
from streamclient.protocol.records.varint import encode_varint

__all__ = ["CompactionStats", "cleanable_segments", "compact", "rebuild_batch"]

_HEADER = struct.Struct(">qiibIhiqqqhii")
_CRC_FROM = 21
_CRC_AT = 17
_LOG_OVERHEAD = 12
_INT32_MAX = (1 << 31) - 1
_COMPRESSION_MASK = 0x07


@dataclass(frozen=True)
class CompactionStats:
    segments_before: int
    segments_after: int
    records_removed: int
    bytes_before: int
    bytes_after: int
    # tombstones or markers kept only because they are young: worth cleaning again later
    expiring_kept: bool
    # False when cleaning would have removed nothing, so the segments were left alone
    rewritten: bool = True


def cleanable_segments(log: PartitionLog, now_ms: int) -> list[Segment]:
    """The leading run of segments compaction may rewrite."""
    segments = list(log.store.segments)
    end = min(log.last_stable_offset, log.high_watermark)
    lag = log.config.min_compaction_lag_ms
    result: list[Segment] = []
    for segment in segments[:-1]:
        if segment.next_offset > end or (lag and now_ms - segment.max_timestamp < lag):
            break
        result.append(segment)
    return result


def compact(log: PartitionLog, now_ms: int) -> CompactionStats | None:
    """Clean ``log`` once; None when no segment is cleanable yet."""
    segments = cleanable_segments(log, now_ms)
    if not segments:
        return None
    stored = [(seg, loc, seg.read(loc.position, loc.size))
              for seg in segments for loc in seg.batches_from(0)]
    first, end = segments[0].base_offset, segments[-1].next_offset
    aborted = log.aborted_transactions(first, end)

    def is_aborted(producer_id: int, offset: int) -> bool:
        return any(t.producer_id == producer_id and t.first_offset <= offset <= t.last_offset
                   for t in aborted)

    latest: dict[bytes, int] = {}
    last_batch_of: dict[int, int] = {}
    for _, loc, data in stored:
        header = log_batches.read_header(data)
        if header.producer_id >= 0:
            last_batch_of[header.producer_id] = loc.base_offset
        if header.is_control or (header.is_transactional
                                 and is_aborted(header.producer_id, loc.base_offset)):
            continue
        for record in RecordBatch(data):
            if record.key is not None:
                latest[record.key] = record.offset

    retention = log.config.delete_retention_ms
    out: list[tuple[bytes, int, int, int]] = []
    removed = 0
    expiring = False
    txn_kept: dict[int, bool] = {}
    for _, loc, data in stored:
        header = log_batches.read_header(data)
        young = now_ms - header.max_timestamp <= retention
        if header.is_control:
            has_data = txn_kept.pop(header.producer_id, False)
            if has_data or young:
                expiring = expiring or not has_data
                out.append((data, loc.base_offset, loc.last_offset, loc.max_timestamp))
            else:
                removed += 1
            continue
        if header.is_transactional and is_aborted(header.producer_id, loc.base_offset):
            records: list[Record] = []
            total = header.record_count
        else:
            all_records = list(RecordBatch(data))
            total = len(all_records)
            records = []
            for r in all_records:
                if r.key is not None and latest.get(r.key) != r.offset:
                    continue
                if r.value is None and not young:
                    continue
                if r.value is None:
                    expiring = True
                records.append(r)
        removed += total - len(records)
        if len(records) == total:
            kept = data
        elif records or last_batch_of.get(header.producer_id) == loc.base_offset:
            kept = rebuild_batch(data, records)
        else:
            continue
        if records and header.is_transactional:
            txn_kept[header.producer_id] = True
        out.append((kept, loc.base_offset, loc.last_offset, loc.max_timestamp))
    bytes_before = sum(s.size_bytes for s in segments)
    bytes_after = sum(len(b[0]) for b in out)
    if removed == 0 and len(out) == len(stored) and bytes_after == bytes_before:
        return CompactionStats(len(segments), len(segments), 0, bytes_before, bytes_before,
                               expiring, rewritten=False)
    cleaned = _group(out, first, log.config.segment_bytes)
    log.store.rewrite_segments(segments, cleaned, now_ms, log.config.index_interval_bytes)
    return CompactionStats(len(segments), len(cleaned), removed, bytes_before, bytes_after,
                           expiring)


def _group(out: list[tuple[bytes, int, int, int]], first_base: int,
           segment_bytes: int) -> list[CleanedSegment]:
    groups: list[CleanedSegment] = []
    current: list[tuple[bytes, int, int, int]] = []
    base, size = first_base, 0
    for item in out:
        data, start, last, _ = item
        if current and (size + len(data) > segment_bytes or last - base > _INT32_MAX):
            groups.append(CleanedSegment(base, current))
            base, current, size = start, [], 0
        current.append(item)
        size += len(data)
    if current:
        groups.append(CleanedSegment(base, current))
    return groups


def rebuild_batch(data: bytes, records: list[Record]) -> bytes:
    """``data``'s batch holding only ``records`` (same offsets, header fields and codec).

    No records gives an empty batch, which Kafka writes uncompressed.
    """
    (base, _, epoch, magic, _, attributes, delta, first_ts, max_ts, pid, pepoch, seq,
     _) = _HEADER.unpack_from(data, 0)
    if not records:
        attributes &= ~_COMPRESSION_MASK
        body = b""
    else:
        body = b"".join(_encode_record(r, base, first_ts) for r in records)
        codec = attributes & _COMPRESSION_MASK
        if codec:
            body = compress(codec_for(codec), body)
    length = _HEADER.size - _LOG_OVERHEAD + len(body)
    out = bytearray(_HEADER.pack(base, length, epoch, magic, 0, attributes, delta, first_ts,
                                 max_ts, pid, pepoch, seq, len(records)))
    out += body
    struct.pack_into(">I", out, _CRC_AT, crc32c.crc32c(memoryview(out)[_CRC_FROM:]))
    return bytes(out)


def _encode_record(record: Record, base_offset: int, first_timestamp: int) -> bytes:
    offset, timestamp, key, value, headers = record
    parts = [b"\x00", encode_varint(timestamp - first_timestamp),
             encode_varint(offset - base_offset)]
    for field in (key, value):
        if field is None:
            parts.append(encode_varint(-1))
        else:
            parts.append(encode_varint(len(field)))
            parts.append(field)
    parts.append(encode_varint(len(headers)))
    for name, hvalue in headers:
        raw = name.encode()
        parts.append(encode_varint(len(raw)))
        parts.append(raw)
        if hvalue is None:
            parts.append(encode_varint(-1))
        else:
            parts.append(encode_varint(len(hvalue)))
            parts.append(hvalue)
    body = b"".join(parts)
    return encode_varint(len(body)) + body
