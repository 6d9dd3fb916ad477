"""Walking the records bytes of a Fetch response (or a log segment): batch after batch.

Kafka's records field is a concatenation of magic-2 batches and/or magic-0/1 messages;
every entry starts with ``offset int64, length int32`` and keeps its magic byte at
offset 16, so one loop handles all three.  The broker may cut the last entry short
(it sends whole batches up to ``max_bytes``, then the start of the next), so an entry
whose declared length runs past the data is dropped silently, as Kafka's clients do.
An entry that is whole but wrong (impossible length, unknown magic, failed CRC) raises
``CorruptRecordException``; an unknown codec raises ``UnsupportedCodecError``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from streamclient.errors import CorruptRecordException
from streamclient.protocol.records.batch import (
    ATTR_COMPRESSION_MASK,
    HEADER_SIZE,
    LOG_OVERHEAD,
    RecordBatch,
)
from streamclient.protocol.records.compression import codec_for
from streamclient.protocol.records.legacy import LEGACY_MIN_SIZE, LegacyBatch

__all__ = ["AnyBatch", "iter_batches", "read_batch"]

AnyBatch = RecordBatch | LegacyBatch

_LENGTH = struct.Struct(">i")
_MAGIC_OFFSET = 16
_MIN_LENGTH = {0: LEGACY_MIN_SIZE[0], 1: LEGACY_MIN_SIZE[1], 2: HEADER_SIZE - LOG_OVERHEAD}
_SMALLEST = min(_MIN_LENGTH.values())


def iter_batches(data: bytes | bytearray | memoryview, *,
                 validate_crc: bool = True) -> Iterator[AnyBatch]:
    """Yield each whole batch in ``data``; drop a partial one at the end.

    With ``validate_crc`` (the default, like the Java consumer's ``check.crcs``) every
    batch's checksum is verified before it is yielded.
    """
    view = data if isinstance(data, memoryview) else memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    pos, end = 0, len(view)
    unpack_length = _LENGTH.unpack_from
    while end - pos > _MAGIC_OFFSET:
        (length,) = unpack_length(view, pos + 8)
        # the order of checks is Java's: a length no entry can have is corruption even
        # at the end; past that, a short entry is the broker's cut, whatever it holds
        if length < _SMALLEST:
            raise CorruptRecordException(
                f"record batch at byte {pos} declares length {length}, below {_SMALLEST}")
        size = length + LOG_OVERHEAD
        if pos + size > end:
            return
        magic = view[pos + _MAGIC_OFFSET]
        minimum = _MIN_LENGTH.get(magic)
        if minimum is None:
            raise CorruptRecordException(f"unknown record magic {magic} at byte {pos}")
        if length < minimum:
            raise CorruptRecordException(
                f"magic-{magic} batch at byte {pos} declares length {length}, below {minimum}")
        yield _open(view[pos:pos + size], magic, validate_crc)
        pos += size


def read_batch(data: bytes | bytearray | memoryview, *,
               validate_crc: bool = True) -> AnyBatch:
    """The one batch ``data`` starts with; a truncated batch raises ``CorruptRecordException``."""
    view = data if isinstance(data, memoryview) else memoryview(data)
    if len(view) <= _MAGIC_OFFSET:
        raise CorruptRecordException(f"{len(view)} bytes cannot hold a record batch")
    return _open(view, view[_MAGIC_OFFSET], validate_crc)


def _open(view: memoryview, magic: int, validate_crc: bool) -> AnyBatch:
    # the CRC goes first: a flipped codec bit is corruption, not an unknown codec
    batch: AnyBatch
    if magic == 2:
        batch = RecordBatch(view)
        if validate_crc:
            batch.ensure_valid_crc()
        codec_for(batch.attributes & ATTR_COMPRESSION_MASK)
        return batch
    if magic in (0, 1):
        batch = LegacyBatch(view, validate_crc=validate_crc)
        return batch
    raise CorruptRecordException(f"unknown record magic {magic}")
