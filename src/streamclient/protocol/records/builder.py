"""``RecordBatchBuilder``: a magic-2 record batch built incrementally in one ``bytearray``.

The 61-byte header is reserved up front and written by :meth:`RecordBatchBuilder.build`,
once the counts, timestamps and producer state are known.  Records are appended as they
come by its base, :class:`~.writer.RecordWriter` (in C when the extension was built, else
in Python), which tracks the size so that ``append`` can answer "full" against
``batch_size`` before writing anything.  The first record always fits, whatever its size, as in the
Java client (an oversized record gets a batch of its own).

For a compressed batch the size is an estimate: the uncompressed records times a
compression ratio (from :class:`.CompressionRatioEstimator`, 1.0 by default) times 1.05,
the Java client's safety margin.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

from crc32c import crc32c

from streamclient._native import native_impl
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
    TimestampType,
)
from streamclient.protocol.records.compression import Compression, compress
from streamclient.protocol.records.varint import size_of_varint
from streamclient.protocol.records.writer import Header, encode_headers

if TYPE_CHECKING:
    from streamclient.protocol.records.writer import RecordWriter
else:
    from streamclient.protocol.records.writer import RecordWriter as _PyRecordWriter

    RecordWriter = native_impl("streamclient.protocol.records._cwriter", "RecordWriter", _PyRecordWriter)

__all__ = ["DEFAULT_BATCH_SIZE", "ESTIMATION_MARGIN", "Header", "RecordBatchBuilder"]

Bytes = bytes | bytearray | memoryview

DEFAULT_BATCH_SIZE = 16384
ESTIMATION_MARGIN = 1.05  # Java's COMPRESSION_RATE_ESTIMATION_FACTOR

_CRC = struct.Struct(">I")


class RecordBatchBuilder(RecordWriter):
    __slots__ = (
        "_attributes",
        "_base_offset",
        "_compressed_size",
        "_level",
        "base_sequence",
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
        self.partition_leader_epoch = partition_leader_epoch
        self._base_offset = base_offset
        self._level = compression_level
        self._compressed_size = -1
        # estimated built size / uncompressed size; exactly 1.0 when uncompressed
        super().__init__(batch_size, compression_ratio_estimate * ESTIMATION_MARGIN
                         if self.compression else 1.0)

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
                + size_of_varint(value_len) + max(value_len, 0) + len(encode_headers(headers)))
        return HEADER_SIZE + size_of_varint(body) + body

    def __repr__(self) -> str:
        return (f"RecordBatchBuilder(compression={self.compression.name}, "
                f"records={self._count}, size={self.estimated_size}/{self.batch_size})")

