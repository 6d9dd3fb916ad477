"""``RecordWriter``: the records section of a magic-2 batch, appended one record at a time.

The state a producer touches for every record lives here, apart from the batch header that
:class:`~streamclient.protocol.records.builder.RecordBatchBuilder` (its subclass) writes at
build time.  This is the pure-Python implementation; ``_cwriter`` (built from
``_cwriter.c`` when a C compiler is available at install) is the same class in C, with the
same fields and the same results byte for byte, and is used when it imports.  Setting
``STREAMCLIENT_PURE_PYTHON=1`` forces this one (the tests run both).
"""

from __future__ import annotations

from collections.abc import Sequence

from streamclient.errors import IllegalArgumentError, IllegalStateError
from streamclient.protocol.records.batch import HEADER_SIZE, NO_TIMESTAMP
from streamclient.protocol.records.varint import (
    UVARINT_TABLE,
    UVARINT_TABLE_SIZE,
    encode_varint,
)

__all__ = ["Header", "RecordWriter", "encode_headers"]

Header = tuple[str, bytes | None]
Bytes = bytes | bytearray | memoryview

_T = UVARINT_TABLE
_HALF = UVARINT_TABLE_SIZE >> 1  # non-negative values below this zigzag into the table
_header_names: dict[str, bytes] = {}  # header keys repeat; encode each once


class RecordWriter:
    """Records appended to ``_buf`` after a reserved header, with the counters the batch
    header needs (count, first and max timestamp) and the size estimate a producer
    checks against ``batch_size``.

    ``_factor`` is the estimated built size over the uncompressed size (1.0 when
    uncompressed); ``_built`` is set once the batch is built, after which appends fail.
    """

    __slots__ = ("_buf", "_built", "_count", "_factor", "_first_ts", "_max_ts",
                 "appended_size", "batch_size")

    def __init__(self, batch_size: int, factor: float = 1.0) -> None:
        self._buf = bytearray(HEADER_SIZE)
        self._built: bytearray | None = None
        self._count = 0
        self._factor = factor
        self._first_ts = NO_TIMESTAMP
        self._max_ts = NO_TIMESTAMP
        # the estimated built size, kept by append() so that the producer's hot path
        # reads an attribute rather than calling a property
        self.appended_size = HEADER_SIZE
        self.batch_size = batch_size

    def append(self, timestamp_ms: int | None, key: Bytes | None, value: Bytes | None,
               headers: Sequence[Header] = ()) -> int | None:
        """Add one record; return its offset delta, or ``None`` when the batch is full.

        ``timestamp_ms=None`` means no timestamp (-1, as magic-2 batches from old clients
        carry).  Keys, values and header values may be ``None`` (null) or bytes-like.
        The first record always fits, whatever its size.
        """
        if self._built is not None:
            raise IllegalStateError("append() after build()")
        if timestamp_ms is None:
            timestamp_ms = NO_TIMESTAMP
        elif timestamp_ms < 0 and timestamp_ms != NO_TIMESTAMP:
            raise IllegalArgumentError(f"invalid negative timestamp {timestamp_ms}")
        elif timestamp_ms >= _TIMESTAMP_LIMIT:
            raise IllegalArgumentError(f"timestamp {timestamp_ms} is out of range")
        hb = encode_headers(headers) if headers else b"\x00"
        count = self._count
        try:
            prefix, record, size = self._encode(count, timestamp_ms, key, value, hb)
        except TypeError:
            raise IllegalArgumentError("key and value must be bytes-like or None") from None
        if count and size > self.batch_size:
            return None
        return self._write(count, timestamp_ms, prefix, record, size)

    def append_below(self, limit: int, timestamp_ms: int, key: bytes | None,
                     value: bytes) -> int | None:
        """Append a record with no headers to a batch that has records, only if the
        estimated size stays below ``limit``; else ``None``, with nothing written.

        The producer's fast path: a record that would fill the batch (or end the sticky
        partition's turn) takes the general path instead, which decides what happens next.
        """
        count = self._count
        if not count or self._built is not None:
            return None
        prefix, record, size = self._encode(count, timestamp_ms, key, value, b"\x00")
        if size >= limit:
            return None
        return self._write(count, timestamp_ms, prefix, record, size)

    def _encode(self, count: int, timestamp_ms: int, key: Bytes | None, value: Bytes | None,
                hb: bytes) -> tuple[bytes, bytes, int]:
        """The record's length prefix and body, and the writer's size with them."""
        if count:
            delta = timestamp_ms - self._first_ts
            tsb = _T[delta << 1] if 0 <= delta < _HALF else encode_varint(delta)
            odb = _T[count << 1] if count < _HALF else encode_varint(count)
        else:
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
        # the record after its length prefix, joined once: its length is the body's
        record = b"".join((b"\x00", tsb, odb, kb, key, vb, value, hb))
        body = len(record)
        prefix = _T[body << 1] if body < _HALF else encode_varint(body)
        size = len(self._buf) + len(prefix) + body
        factor = self._factor
        if factor != 1.0:
            size = HEADER_SIZE + int((size - HEADER_SIZE) * factor)
        return prefix, record, size

    def _write(self, count: int, timestamp_ms: int, prefix: bytes, record: bytes,
               size: int) -> int:
        if not count:
            self._first_ts = timestamp_ms
        buf = self._buf
        buf += prefix
        buf += record
        self.appended_size = size
        self._count = count + 1
        if timestamp_ms > self._max_ts:
            self._max_ts = timestamp_ms
        return count


# a timestamp the batch header (int64) can hold with room for deltas against it
_TIMESTAMP_LIMIT = 1 << 62


def encode_headers(headers: Sequence[Header]) -> bytes:
    """A record's headers section: a count, then each key (UTF-8) and value."""
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
