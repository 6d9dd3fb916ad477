"""``RecordBatchBuilder``: a magic-2 record batch built incrementally in one ``bytearray``.

The 61-byte header is reserved up front and written by :meth:`RecordBatchBuilder.build`,
once the counts, timestamps and producer state are known.  Records are appended as they
come, each encoded with table-driven varints (:mod:`.varint`) and one ``bytes.join``;
the builder tracks its size so that ``append`` can answer "full" against ``batch_size``
before writing anything.  The first record always fits, whatever its size, as in the
Java client (an oversized record gets a batch of its own).

For a compressed batch the size is an estimate: the uncompressed records times a
compression ratio (from :class:`.CompressionRatioEstimator`, 1.0 by default) times 1.05,
the Java client's safety margin.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from crc32c import crc32c

from streamclient.errors import IllegalArgumentError, IllegalStateError
from streamclient.protocol.records.batch import (
    ATTR_CONTROL,
    ATTR_TIMESTAMP_TYPE,
    ATTR_TRANSACTIONAL,
    CRC_OFFSET,
    CRC_START,
    HEADER,
    HEADER_SIZE,
    LOG_OVERHEAD,
    NO_TIMESTAMP,
    TimestampType,
)
from streamclient.protocol.records.compression import Compression, compress
from streamclient.protocol.records.varint import (
    UVARINT_TABLE,
    UVARINT_TABLE_SIZE,
    encode_varint,
    size_of_varint,
)

__all__ = ["DEFAULT_BATCH_SIZE", "ESTIMATION_MARGIN", "Header", "RecordBatchBuilder"]

Header = tuple[str, bytes | None]
Bytes = bytes | bytearray | memoryview

DEFAULT_BATCH_SIZE = 16384
ESTIMATION_MARGIN = 1.05  # Java's COMPRESSION_RATE_ESTIMATION_FACTOR

_T = UVARINT_TABLE
_HALF = UVARINT_TABLE_SIZE >> 1  # non-negative values below this zigzag into the table
_CRC = struct.Struct(">I")
_header_names: dict[str, bytes] = {}  # header keys repeat; encode each once


class RecordBatchBuilder:
    __slots__ = (
        "_attributes",
        "_base_offset",
        "_buf",
        "_built",
        "_compressed_size",
        "_count",
        "_factor",
        "_first_ts",
        "_level",
        "_max_ts",
        "appended_size",
        "base_sequence",
        "batch_size",
        "compression",
        "partition_leader_epoch",
        "producer_epoch",
        "producer_id",
    )

    def __init__(
        self,
        compression: Compression | int = Compression.NONE,
        is_transactional: bool = False,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        batch_size: int = DEFAULT_BATCH_SIZE,
        *,
        is_control: bool = False,
        timestamp_type: TimestampType | int = TimestampType.CREATE_TIME,
        base_offset: int = 0,
        partition_leader_epoch: int = -1,
        compression_level: int | None = None,
        compression_ratio_estimate: float = 1.0,
    ) -> None:
        try:
            self.compression = Compression(compression)
        except ValueError:
            raise IllegalArgumentError(f"unknown compression {compression!r}") from None
        attributes = int(self.compression)
        if timestamp_type:
            attributes |= ATTR_TIMESTAMP_TYPE
        if is_transactional:
            attributes |= ATTR_TRANSACTIONAL
        if is_control:
            attributes |= ATTR_CONTROL
        self._attributes = attributes
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.base_sequence = base_sequence
        self.batch_size = batch_size
        self.partition_leader_epoch = partition_leader_epoch
        self._base_offset = base_offset
        self._level = compression_level
        # estimated built size / uncompressed size; exactly 1.0 when uncompressed
        self._factor = compression_ratio_estimate * ESTIMATION_MARGIN if self.compression else 1.0
        self._buf = bytearray(HEADER_SIZE)
        # estimated_size before build(), kept up to date by append() so that the
        # producer's hot path reads an attribute rather than calling a property
        self.appended_size = HEADER_SIZE
        self._count = 0
        self._first_ts = NO_TIMESTAMP
        self._max_ts = NO_TIMESTAMP
        self._built: bytearray | None = None
        self._compressed_size = -1

    # --- appending ---------------------------------------------------------------------

    def append(self, timestamp_ms: int | None, key: Bytes | None, value: Bytes | None,
               headers: Sequence[Header] = ()) -> int | None:
        """Add one record; return its offset delta, or ``None`` when the batch is full.

        ``timestamp_ms=None`` means no timestamp (-1, as magic-2 batches from old clients
        carry).  Keys, values and header values may be ``None`` (null) or bytes-like.
        """
        if self._built is not None:
            raise IllegalStateError("append() after build()")
        count = self._count
        if timestamp_ms is None:
            timestamp_ms = NO_TIMESTAMP
        elif timestamp_ms < 0 and timestamp_ms != NO_TIMESTAMP:
            raise IllegalArgumentError(f"invalid negative timestamp {timestamp_ms}")
        if count:
            delta = timestamp_ms - self._first_ts
            if 0 <= delta < _HALF:
                tsb = _T[delta << 1]
            else:
                tsb = encode_varint(delta)
            odb = _T[count << 1] if count < _HALF else encode_varint(count)
        else:
            self._first_ts = timestamp_ms
            tsb = odb = b"\x00"
        if key is None:
            kb = b"\x01"  # zigzag(-1): null
            key = b""
        else:
            key_len = len(key)
            kb = _T[key_len << 1] if key_len < _HALF else encode_varint(key_len)
        if value is None:
            vb = b"\x01"
            value = b""
        else:
            value_len = len(value)
            vb = _T[value_len << 1] if value_len < _HALF else encode_varint(value_len)
        hb = _encode_headers(headers) if headers else b"\x00"
        try:
            # the record after its length prefix, joined once: its length is the body's
            record = b"".join((b"\x00", tsb, odb, kb, key, vb, value, hb))
        except TypeError:
            raise IllegalArgumentError("key and value must be bytes-like or None") from None
        body = len(record)
        lb = _T[body << 1] if body < _HALF else encode_varint(body)
        buf = self._buf
        size = len(buf) + len(lb) + body
        factor = self._factor
        if factor != 1.0:
            size = HEADER_SIZE + int((size - HEADER_SIZE) * factor)
        if count and size > self.batch_size:
            return None
        buf += lb
        buf += record
        self.appended_size = size
        self._count = count + 1
        if timestamp_ms > self._max_ts:
            self._max_ts = timestamp_ms
        return count

    def _estimate(self, uncompressed_size: int) -> int:
        if self._factor == 1.0:
            return uncompressed_size
        return HEADER_SIZE + int((uncompressed_size - HEADER_SIZE) * self._factor)

    # --- sizes and state -------------------------------------------------------------------

    @property
    def record_count(self) -> int:
        return self._count

    @property
    def estimated_size(self) -> int:
        """Bytes the built batch will take (exact when uncompressed or once built)."""
        built = self._built
        if built is not None:
            return len(built)
        return self.appended_size

    @property
    def uncompressed_size(self) -> int:
        return len(self._buf)

    @property
    def compression_ratio(self) -> float:
        """Compressed / uncompressed size of the records section, once built (else 1.0)."""
        records = len(self._buf) - HEADER_SIZE
        if self._compressed_size < 0 or records <= 0:
            return 1.0
        return self._compressed_size / records

    @property
    def first_timestamp(self) -> int:
        return self._first_ts

    @property
    def max_timestamp(self) -> int:
        return self._max_ts

    @property
    def is_transactional(self) -> bool:
        return bool(self._attributes & ATTR_TRANSACTIONAL)

    @property
    def is_built(self) -> bool:
        return self._built is not None

    def set_compression_ratio_estimate(self, ratio: float) -> None:
        if self.compression:
            self._factor = ratio * ESTIMATION_MARGIN
            self.appended_size = self._estimate(len(self._buf))

    def set_producer_state(self, producer_id: int, producer_epoch: int,
                           base_sequence: int, is_transactional: bool | None = None) -> None:
        """Set the idempotence fields, before or after :meth:`build` (a retry with a new
        producer id or epoch rewrites them; only the header and CRC change)."""
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.base_sequence = base_sequence
        if is_transactional is not None:
            if is_transactional:
                self._attributes |= ATTR_TRANSACTIONAL
            else:
                self._attributes &= ~ATTR_TRANSACTIONAL
        if self._built is not None:
            self._write_header(self._built)

    # --- building ---------------------------------------------------------------------

    def build(self) -> bytes:
        """The finished batch; compresses the records section on the first call."""
        out = self._built
        if out is None:
            if not self._count:
                raise IllegalStateError("cannot build a record batch with no records")
            if self.compression:
                with memoryview(self._buf) as view:
                    packed = compress(self.compression, view[HEADER_SIZE:], self._level)
                self._compressed_size = len(packed)
                out = bytearray(HEADER_SIZE)
                out += packed
            else:
                out = self._buf
            self._built = out
        self._write_header(out)
        return bytes(out)

    def _write_header(self, out: bytearray) -> None:
        count = self._count
        HEADER.pack_into(
            out, 0, self._base_offset, len(out) - LOG_OVERHEAD, self.partition_leader_epoch,
            2, 0, self._attributes, count - 1, self._first_ts, self._max_ts,
            self.producer_id, self.producer_epoch, self.base_sequence, count)
        with memoryview(out) as view:
            _CRC.pack_into(out, CRC_OFFSET, crc32c(view[CRC_START:]))

    @staticmethod
    def estimate_size_in_bytes(key: Bytes | None, value: Bytes | None,
                               headers: Sequence[Header] = ()) -> int:
        """Upper bound of a batch holding just this record (for max-request-size checks)."""
        key_len = -1 if key is None else len(key)
        value_len = -1 if value is None else len(value)
        body = (1 + 10 + 5 + size_of_varint(key_len) + max(key_len, 0)
                + size_of_varint(value_len) + max(value_len, 0) + len(_encode_headers(headers)))
        return HEADER_SIZE + size_of_varint(body) + body

    def __repr__(self) -> str:
        return (f"RecordBatchBuilder(compression={self.compression.name}, "
                f"records={self._count}, size={self.estimated_size}/{self.batch_size})")


def _encode_headers(headers: Sequence[Header]) -> bytes:
    if not isinstance(headers, (list, tuple)):
        headers = tuple(headers)
    parts = [encode_varint(len(headers))]
    append = parts.append
    for name, value in headers:
        encoded = _header_names.get(name)
        if encoded is None:
            if not isinstance(name, str):
                raise IllegalArgumentError(f"header key must be str, got {type(name).__name__}")
            encoded = name.encode()
            if len(_header_names) < 1024:
                _header_names[name] = encoded
        append(encode_varint(len(encoded)))
        append(encoded)
        if value is None:
            append(b"\x01")
        else:
            append(encode_varint(len(value)))
            append(value)
    try:
        return b"".join(parts)
    except TypeError:
        raise IllegalArgumentError("header values must be bytes-like or None") from None
