"""Legacy message sets (magic 0 and 1): a reader, and a small writer for tests and tools.

One message (big-endian)::

    offset int64, message_size int32, crc uint32 (CRC-32 of magic..end),
    magic int8, attributes int8 (bits 0-2 codec, bit 3 LogAppendTime in v1),
    [timestamp int64, v1 only], key bytes (int32 length, -1 = null), value bytes

A compressed message is a wrapper whose value is a compressed message set.  In v1 the
inner offsets are relative (0..n-1) and the wrapper carries the absolute offset of the
last inner message; in v0 inner offsets are absolute.  A v1 wrapper with LogAppendTime
gives every inner message its own timestamp.

:class:`LegacyBatch` presents one top-level message with the same surface as
:class:`.RecordBatch`, so :func:`.iter_batches` can yield either.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from streamclient.errors import CorruptRecordException, IllegalArgumentError, UnsupportedCodecError
from streamclient.protocol.records.batch import NO_TIMESTAMP, Record, TimestampType
from streamclient.protocol.records.compression import Compression, codec_for, compress, decompress

__all__ = ["LEGACY_MIN_SIZE", "LegacyBatch", "LegacyRecordBatchBuilder", "parse_message_set"]

_PREFIX = struct.Struct(">qiIbb")  # offset, size, crc, magic, attributes
_TIMESTAMP = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_CRC = struct.Struct(">I")
_LOG_OVERHEAD = 12
# message_size minimum per magic: crc + magic + attributes [+ timestamp] + two lengths
LEGACY_MIN_SIZE = {0: 14, 1: 22}
_ATTR_CODEC = 0x07
_ATTR_LOG_APPEND_TIME = 0x08
_EMPTY: tuple[()] = ()


class _Message:
    """One parsed legacy message (wrapper or inner)."""

    __slots__ = ("attributes", "crc", "key", "magic", "offset", "size", "timestamp", "value")
    attributes: int
    crc: int
    key: bytes | None
    magic: int
    offset: int
    size: int
    timestamp: int
    value: bytes | None

    def __init__(self, buf: memoryview | bytes, pos: int, end: int) -> None:
        if end - pos < _LOG_OVERHEAD + 14:
            raise CorruptRecordException("legacy message is truncated")
        self.offset, self.size, self.crc, self.magic, self.attributes = _PREFIX.unpack_from(
            buf, pos)
        if self.magic not in (0, 1):
            raise CorruptRecordException(f"legacy message magic is {self.magic}")
        if self.size < LEGACY_MIN_SIZE[self.magic]:
            raise CorruptRecordException(f"legacy message size {self.size} is too small")
        msg_end = pos + _LOG_OVERHEAD + self.size
        if msg_end > end:
            raise CorruptRecordException("legacy message is truncated")
        cur = pos + 18
        if self.magic == 1:
            self.timestamp = _TIMESTAMP.unpack_from(buf, cur)[0]
            cur += 8
        else:
            self.timestamp = NO_TIMESTAMP
        self.key, cur = _read_bytes(buf, cur, msg_end)
        self.value, cur = _read_bytes(buf, cur, msg_end)
        if cur != msg_end:
            raise CorruptRecordException(
                f"legacy message declares {self.size} bytes but holds {cur - pos - 12}")


def _read_bytes(buf: memoryview | bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    if pos + 4 > end:
        raise CorruptRecordException("legacy message field is truncated")
    (size,) = _INT32.unpack_from(buf, pos)
    pos += 4
    if size < 0:
        return None, pos
    if pos + size > end:
        raise CorruptRecordException(f"legacy message field of {size} bytes overruns it")
    return bytes(buf[pos:pos + size]), pos + size


def parse_message_set(data: bytes | memoryview) -> list[_Message]:
    """Every whole message in an (inner, decompressed) message set."""
    messages = []
    pos, end = 0, len(data)
    while pos < end:
        message = _Message(data, pos, end)
        messages.append(message)
        pos += _LOG_OVERHEAD + message.size
    return messages


class LegacyBatch:
    """One top-level magic-0/1 message (possibly a compressed wrapper) as a batch."""

    __slots__ = ("_data", "_inner", "_message")

    partition_leader_epoch = -1
    producer_id = -1
    producer_epoch = -1
    base_sequence = -1
    is_transactional = False
    is_control = False

    def __init__(self, data: bytes | bytearray | memoryview, *, validate_crc: bool = False
                 ) -> None:
        view = data if isinstance(data, memoryview) else memoryview(data)
        self._message = _Message(view, 0, len(view))
        self._data = view[:_LOG_OVERHEAD + self._message.size]
        self._inner: list[Record] | None = None
        if validate_crc:
            self.ensure_valid_crc()
        codec = self._message.attributes & _ATTR_CODEC
        if codec > Compression.LZ4:
            raise UnsupportedCodecError(f"codec {codec} is not allowed in magic {self.magic}")

    @property
    def magic(self) -> int:
        return int(self._message.magic)

    @property
    def attributes(self) -> int:
        return int(self._message.attributes)

    @property
    def crc(self) -> int:
        return int(self._message.crc)

    @property
    def batch_length(self) -> int:
        return int(self._message.size)

    @property
    def size_in_bytes(self) -> int:
        return len(self._data)

    @property
    def data(self) -> memoryview:
        return self._data

    @property
    def compression(self) -> Compression:
        return codec_for(self._message.attributes & _ATTR_CODEC)

    @property
    def timestamp_type(self) -> TimestampType:
        if self._message.magic == 0:
            return TimestampType.NO_TIMESTAMP_TYPE
        if self._message.attributes & _ATTR_LOG_APPEND_TIME:
            return TimestampType.LOG_APPEND_TIME
        return TimestampType.CREATE_TIME

    @property
    def first_timestamp(self) -> int:
        return int(self._message.timestamp)

    @property
    def max_timestamp(self) -> int:
        return int(self._message.timestamp)

    @property
    def last_offset(self) -> int:
        return int(self._message.offset)

    @property
    def next_offset(self) -> int:
        return int(self._message.offset) + 1

    @property
    def base_offset(self) -> int:
        """The first record's offset (decompresses a wrapper to find it)."""
        records = self._records()
        return records[0].offset if records else self.last_offset

    @property
    def last_offset_delta(self) -> int:
        return self.last_offset - self.base_offset

    @property
    def record_count(self) -> int:
        return len(self._records())

    def validate_crc(self) -> bool:
        return zlib.crc32(self._data[16:]) == self._message.crc

    def ensure_valid_crc(self) -> None:
        if not self.validate_crc():
            raise CorruptRecordException(
                f"legacy message at offset {self.last_offset} failed its CRC-32 check")

    def __iter__(self) -> Iterator[Record]:
        return iter(self._records())

    def __len__(self) -> int:
        return self.record_count

    def _records(self) -> list[Record]:
        if self._inner is None:
            self._inner = self._decode()
        return self._inner

    def _decode(self) -> list[Record]:
        wrapper = self._message
        codec = self.compression
        if codec == Compression.NONE:
            return [Record(wrapper.offset, wrapper.timestamp, wrapper.key, wrapper.value, _EMPTY)]
        if wrapper.value is None:
            raise CorruptRecordException("compressed legacy wrapper has a null value")
        inner = parse_message_set(decompress(codec, wrapper.value, magic=wrapper.magic))
        if not inner:
            return []
        if any(m.attributes & _ATTR_CODEC for m in inner):
            raise CorruptRecordException("legacy wrapper holds a nested compressed message")
        # v1 inner offsets are relative to the wrapper's (the last one's absolute offset);
        # a wrapper still at offset 0 (as a producer writes it) leaves them as they are
        shift = wrapper.offset - inner[-1].offset if wrapper.magic >= 1 else 0
        if shift < 0:
            shift = 0
        log_append = (wrapper.magic == 1 and bool(wrapper.attributes & _ATTR_LOG_APPEND_TIME))
        return [Record(m.offset + shift, wrapper.timestamp if log_append else m.timestamp,
                       m.key, m.value, _EMPTY) for m in inner]

    def __repr__(self) -> str:
        return (f"LegacyBatch(magic={self.magic}, offset={self.last_offset}, "
                f"attributes={self.attributes:#x}, size={self.size_in_bytes})")


class LegacyRecordBatchBuilder:
    """Writes a magic-0/1 message set; with a codec, one wrapper around the inner set.

    The wrapper gets the last inner offset (v1 inner offsets are written as given, so
    pass 0..n-1 as a producer would) and, in v1, the largest inner timestamp.
    """

    def __init__(self, magic: int, compression: Compression | int = Compression.NONE, *,
                 log_append_time: bool = False) -> None:
        if magic not in (0, 1):
            raise IllegalArgumentError(f"legacy magic must be 0 or 1, got {magic}")
        if compression not in (Compression.NONE, Compression.GZIP, Compression.SNAPPY,
                               Compression.LZ4):
            raise UnsupportedCodecError(f"codec {compression} is not allowed in magic {magic}")
        self.magic = magic
        self.compression = Compression(compression)
        self._log_append_time = log_append_time and magic == 1
        self._buf = bytearray()
        self._last_offset = -1
        self._max_ts = NO_TIMESTAMP

    def append(self, offset: int, timestamp_ms: int | None, key: bytes | None,
               value: bytes | None) -> None:
        ts = NO_TIMESTAMP if timestamp_ms is None else timestamp_ms
        attributes = _ATTR_LOG_APPEND_TIME if self._log_append_time else 0
        if self.compression:
            attributes = 0  # inner messages carry no attributes of their own
        self._buf += _encode_message(self.magic, offset, attributes, ts, key, value)
        self._last_offset = offset
        self._max_ts = max(self._max_ts, ts)

    def build(self) -> bytes:
        if not self.compression:
            return bytes(self._buf)
        packed = compress(self.compression, self._buf, magic=self.magic)
        attributes = int(self.compression)
        if self._log_append_time:
            attributes |= _ATTR_LOG_APPEND_TIME
        return _encode_message(self.magic, self._last_offset, attributes, self._max_ts,
                               None, packed)


def _encode_message(magic: int, offset: int, attributes: int, timestamp: int,
                    key: bytes | None, value: bytes | None) -> bytes:
    body = bytearray((magic, attributes))
    if magic == 1:
        body += _TIMESTAMP.pack(timestamp)
    for field in (key, value):
        if field is None:
            body += b"\xff\xff\xff\xff"
        else:
            body += _INT32.pack(len(field))
            body += field
    return (struct.pack(">qi", offset, len(body) + 4) + _CRC.pack(zlib.crc32(body))
            + bytes(body))
