"""Kafka's primitive wire types: a bounds-checked :class:`Reader` and bytearray writers.

Every read failure (short buffer, negative or oversized length, bad UTF-8, varint too
long) raises :class:`~streamclient.errors.ProtocolDecodeError` with the byte offset, never
an ``IndexError`` or ``struct.error``.  Byte and records reads return ``memoryview`` slices
of the input (no copy); callers that keep them past the life of the input buffer copy them.

The module-level ``*_S`` structs and :func:`decode_uvarint` are also used by the codecs
that :mod:`streamclient.protocol.message` compiles for the generated messages.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

from streamclient.errors import ProtocolDecodeError

__all__ = [
    "BOOL_S",
    "FLOAT64_S",
    "INT8_S",
    "INT16_S",
    "INT32_S",
    "INT64_S",
    "UINT16_S",
    "UINT32_S",
    "ZERO_UUID",
    "Reader",
    "decode_uvarint",
    "encode_uvarint",
    "encode_varint",
    "encode_varlong",
    "write_array_length",
    "write_bool",
    "write_bytes",
    "write_compact_array_length",
    "write_compact_bytes",
    "write_compact_string",
    "write_float64",
    "write_int8",
    "write_int16",
    "write_int32",
    "write_int64",
    "write_string",
    "write_tagged_fields",
    "write_uint16",
    "write_uint32",
    "write_uuid",
    "write_uvarint",
    "write_varint",
    "write_varlong",
]

T = TypeVar("T")

BOOL_S = struct.Struct(">?")
INT8_S = struct.Struct(">b")
INT16_S = struct.Struct(">h")
INT32_S = struct.Struct(">i")
INT64_S = struct.Struct(">q")
UINT16_S = struct.Struct(">H")
UINT32_S = struct.Struct(">I")
FLOAT64_S = struct.Struct(">d")

ZERO_UUID = UUID(int=0)

# An unsigned varint carrying a 32-bit value takes at most 5 bytes, a 64-bit one 10.
_MAX_VARINT_BYTES = 5
_MAX_VARLONG_BYTES = 10


def decode_uvarint(buf: memoryview, pos: int, limit: int = _MAX_VARINT_BYTES) -> tuple[int, int]:
    """Decode an unsigned varint at ``pos``; return ``(value, next_pos)``."""
    end = len(buf)
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise ProtocolDecodeError("truncated varint", offset=start)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if pos - start >= limit:
            raise ProtocolDecodeError("varint is too long", offset=start)


def encode_uvarint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"unsigned varint cannot hold {value}")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_varint(value: int) -> bytes:
    """Zigzag-encode a signed 32-bit value."""
    if not -0x80000000 <= value <= 0x7FFFFFFF:
        raise ValueError(f"varint out of range: {value}")
    return encode_uvarint(((value << 1) ^ (value >> 31)) & 0xFFFFFFFF)


def encode_varlong(value: int) -> bytes:
    """Zigzag-encode a signed 64-bit value."""
    if not -0x8000000000000000 <= value <= 0x7FFFFFFFFFFFFFFF:
        raise ValueError(f"varlong out of range: {value}")
    return encode_uvarint(((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)


class Reader:
    """A cursor over a buffer; every read checks bounds and advances ``pos``."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0) -> None:
        buf = data if isinstance(data, memoryview) else memoryview(data)
        if buf.format != "B" or buf.ndim != 1:
            buf = buf.cast("B")
        self.buf = buf
        self.pos = pos
        self.end = len(buf)

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def _need(self, n: int) -> int:
        pos = self.pos
        if pos + n > self.end:
            raise ProtocolDecodeError(f"need {n} bytes, {self.end - pos} left", offset=pos)
        self.pos = pos + n
        return pos

    def _fixed(self, s: struct.Struct) -> int:
        pos = self._need(s.size)
        return s.unpack_from(self.buf, pos)[0]

    def int8(self) -> int:
        return self._fixed(INT8_S)

    def int16(self) -> int:
        return self._fixed(INT16_S)

    def int32(self) -> int:
        return self._fixed(INT32_S)

    def int64(self) -> int:
        return self._fixed(INT64_S)

    def uint16(self) -> int:
        return self._fixed(UINT16_S)

    def uint32(self) -> int:
        return self._fixed(UINT32_S)

    def float64(self) -> float:
        pos = self._need(8)
        return FLOAT64_S.unpack_from(self.buf, pos)[0]

    def boolean(self) -> bool:
        pos = self._need(1)
        return self.buf[pos] != 0

    def uuid(self) -> UUID:
        pos = self._need(16)
        return UUID(bytes=bytes(self.buf[pos : pos + 16]))

    def uvarint(self) -> int:
        value, self.pos = decode_uvarint(self.buf, self.pos)
        return value

    def uvarlong(self) -> int:
        value, self.pos = decode_uvarint(self.buf, self.pos, _MAX_VARLONG_BYTES)
        return value

    def varint(self) -> int:
        n = self.uvarint()
        if n > 0xFFFFFFFF:
            raise ProtocolDecodeError("varint out of range", offset=self.pos)
        return (n >> 1) ^ -(n & 1)

    def varlong(self) -> int:
        n = self.uvarlong()
        if n > 0xFFFFFFFFFFFFFFFF:
            raise ProtocolDecodeError("varlong out of range", offset=self.pos)
        return (n >> 1) ^ -(n & 1)

    def raw(self, n: int) -> memoryview:
        """``n`` bytes as a zero-copy slice."""
        if n < 0:
            raise ProtocolDecodeError(f"negative length {n}", offset=self.pos)
        pos = self._need(n)
        return self.buf[pos : pos + n]

    def _text(self, n: int) -> str:
        start = self.pos
        data = self.raw(n)
        try:
            return str(data, "utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolDecodeError(f"invalid UTF-8 string: {exc.reason}", offset=start) from None

    def nullable_string(self) -> str | None:
        start = self.pos
        n = self.int16()
        if n < 0:
            if n != -1:
                raise ProtocolDecodeError(f"invalid string length {n}", offset=start)
            return None
        return self._text(n)

    def string(self) -> str:
        start = self.pos
        value = self.nullable_string()
        if value is None:
            raise ProtocolDecodeError("null in a non-nullable string", offset=start)
        return value

    def compact_nullable_string(self) -> str | None:
        n = self.uvarint()
        if n == 0:
            return None
        return self._text(n - 1)

    def compact_string(self) -> str:
        start = self.pos
        value = self.compact_nullable_string()
        if value is None:
            raise ProtocolDecodeError("null in a non-nullable string", offset=start)
        return value

    def nullable_bytes(self) -> memoryview | None:
        start = self.pos
        n = self.int32()
        if n < 0:
            if n != -1:
                raise ProtocolDecodeError(f"invalid bytes length {n}", offset=start)
            return None
        return self.raw(n)

    def bytes_(self) -> memoryview:
        start = self.pos
        value = self.nullable_bytes()
        if value is None:
            raise ProtocolDecodeError("null in non-nullable bytes", offset=start)
        return value

    def compact_nullable_bytes(self) -> memoryview | None:
        n = self.uvarint()
        if n == 0:
            return None
        return self.raw(n - 1)

    def compact_bytes(self) -> memoryview:
        start = self.pos
        value = self.compact_nullable_bytes()
        if value is None:
            raise ProtocolDecodeError("null in non-nullable bytes", offset=start)
        return value

    def _count(self, n: int, start: int) -> int:
        # Every element takes at least one byte, so a count larger than what is left is
        # corrupt; checking here stops a forged length from allocating a huge list.
        if n > self.end - self.pos:
            raise ProtocolDecodeError(f"array length {n} exceeds the buffer", offset=start)
        return n

    def array_length(self) -> int | None:
        """A classic array's element count, or ``None`` for a null array."""
        start = self.pos
        n = self.int32()
        if n < 0:
            if n != -1:
                raise ProtocolDecodeError(f"invalid array length {n}", offset=start)
            return None
        return self._count(n, start)

    def compact_array_length(self) -> int | None:
        start = self.pos
        n = self.uvarint()
        if n == 0:
            return None
        return self._count(n - 1, start)

    def array(self, item: Callable[[Reader], T]) -> list[T] | None:
        n = self.array_length()
        return None if n is None else [item(self) for _ in range(n)]

    def compact_array(self, item: Callable[[Reader], T]) -> list[T] | None:
        n = self.compact_array_length()
        return None if n is None else [item(self) for _ in range(n)]

    def tagged_fields(self) -> dict[int, memoryview]:
        """A tagged-field section, as raw values by tag (decoding them is the caller's job)."""
        out: dict[int, memoryview] = {}
        count = self.uvarint()
        for _ in range(count):
            tag = self.uvarint()
            out[tag] = self.raw(self.uvarint())
        return out


# --- writers: append to a bytearray -------------------------------------------------


def write_int8(buf: bytearray, value: int) -> None:
    buf += INT8_S.pack(value)


def write_int16(buf: bytearray, value: int) -> None:
    buf += INT16_S.pack(value)


def write_int32(buf: bytearray, value: int) -> None:
    buf += INT32_S.pack(value)


def write_int64(buf: bytearray, value: int) -> None:
    buf += INT64_S.pack(value)


def write_uint16(buf: bytearray, value: int) -> None:
    buf += UINT16_S.pack(value)


def write_uint32(buf: bytearray, value: int) -> None:
    buf += UINT32_S.pack(value)


def write_float64(buf: bytearray, value: float) -> None:
    buf += FLOAT64_S.pack(value)


def write_bool(buf: bytearray, value: bool) -> None:
    buf.append(1 if value else 0)


def write_uuid(buf: bytearray, value: UUID) -> None:
    buf += value.bytes


def write_uvarint(buf: bytearray, value: int) -> None:
    if 0 <= value < 0x80:
        buf.append(value)
    else:
        buf += encode_uvarint(value)


def write_varint(buf: bytearray, value: int) -> None:
    buf += encode_varint(value)


def write_varlong(buf: bytearray, value: int) -> None:
    buf += encode_varlong(value)


def write_string(buf: bytearray, value: str | None) -> None:
    """A classic (int16-length) string; ``None`` writes the null marker."""
    if value is None:
        buf += b"\xff\xff"
        return
    data = value.encode()
    buf += INT16_S.pack(len(data))
    buf += data


def write_compact_string(buf: bytearray, value: str | None) -> None:
    if value is None:
        buf.append(0)
        return
    data = value.encode()
    write_uvarint(buf, len(data) + 1)
    buf += data


def write_bytes(buf: bytearray, value: bytes | bytearray | memoryview | None) -> None:
    """Classic (int32-length) bytes; ``None`` writes the null marker."""
    if value is None:
        buf += b"\xff\xff\xff\xff"
        return
    buf += INT32_S.pack(len(value))
    buf += value


def write_compact_bytes(buf: bytearray, value: bytes | bytearray | memoryview | None) -> None:
    if value is None:
        buf.append(0)
        return
    write_uvarint(buf, len(value) + 1)
    buf += value


def write_array_length(buf: bytearray, length: int | None) -> None:
    buf += INT32_S.pack(-1 if length is None else length)


def write_compact_array_length(buf: bytearray, length: int | None) -> None:
    write_uvarint(buf, 0 if length is None else length + 1)


def write_tagged_fields(
    buf: bytearray, fields: dict[int, bytes] | list[tuple[int, bytes]] | None
) -> None:
    """A tagged-field section from raw values, written in ascending tag order."""
    if not fields:
        buf.append(0)
        return
    items = sorted(fields.items() if isinstance(fields, dict) else fields)
    write_uvarint(buf, len(items))
    for tag, data in items:
        write_uvarint(buf, tag)
        write_uvarint(buf, len(data))
        buf += data
