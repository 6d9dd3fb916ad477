"""Damaged record data: flipped bytes, truncation, impossible lengths and counts, unknown
codecs, and a fuzz test.  Only ``CorruptRecordException`` / ``UnsupportedCodecError``
ever come out, never IndexError, struct.error or a codec's own exception."""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamclient.errors import CorruptRecordException, UnsupportedCodecError
from streamclient.protocol.records import (
    Compression,
    LegacyRecordBatchBuilder,
    RecordBatch,
    RecordBatchBuilder,
    iter_batches,
    read_batch,
)

TYPED = (CorruptRecordException, UnsupportedCodecError)
BASE_TS = 1_700_000_000_000


def batch(codec: Compression = Compression.NONE, count: int = 20, base_offset: int = 0) -> bytes:
    builder = RecordBatchBuilder(compression=codec, batch_size=1 << 30, base_offset=base_offset)
    for i in range(count):
        builder.append(BASE_TS + i, b"k%d" % i if i % 3 else None, b"value-%d" % i * 3,
                       [("h", b"x")] if i % 4 == 0 else [])
    return builder.build()


def legacy(magic: int, codec: Compression = Compression.NONE) -> bytes:
    builder = LegacyRecordBatchBuilder(magic, codec)
    for i in range(5):
        builder.append(i, BASE_TS + i, b"k", b"v%d" % i)
    return builder.build()


def with_crc(data: bytearray) -> bytes:
    struct.pack_into(">I", data, 17, crc32c(bytes(data[21:])))
    return bytes(data)


def consume(data: bytes, validate_crc: bool = True) -> int:
    return sum(1 for b in iter_batches(data, validate_crc=validate_crc) for _ in b)


@pytest.mark.parametrize("codec", list(Compression))
def test_every_flipped_byte_in_the_crc_range_is_caught(codec: Compression) -> None:
    data = batch(codec)
    for pos in range(17, len(data)):  # the CRC itself, attributes .. end
        damaged = bytearray(data)
        damaged[pos] ^= 0x5A
        with pytest.raises(CorruptRecordException):
            list(iter_batches(bytes(damaged)))
        assert not RecordBatch(bytes(damaged)).validate_crc()


@pytest.mark.parametrize("magic", [0, 1])
def test_flipped_bytes_in_legacy_messages_are_caught(magic: int) -> None:
    data = legacy(magic, Compression.GZIP)
    for pos in range(16, len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 0x21
        with pytest.raises(TYPED):
            list(iter_batches(bytes(damaged)))


@pytest.mark.parametrize("tail", [batch(Compression.NONE, base_offset=20),
                                  batch(Compression.ZSTD, base_offset=20),
                                  legacy(1, Compression.GZIP)])
def test_partial_batch_at_the_end_of_a_fetch_is_dropped(tail: bytes) -> None:
    first = batch()
    for cut in range(len(tail)):
        batches = list(iter_batches(first + tail[:cut]))
        assert len(batches) == 1 and batches[0].next_offset == 20
        assert len(list(batches[0])) == 20
    assert consume(first + tail) > 20


def test_partial_tail_is_dropped_whatever_its_magic() -> None:
    # as in Java: the magic of an entry is only looked at once the entry is whole
    tail = bytearray(batch(base_offset=20))
    tail[16] = 9
    assert [b.base_offset for b in iter_batches(batch() + bytes(tail[:100]))] == [0]


def test_truncated_single_batch_read_raises() -> None:
    data = batch()
    for cut in (0, 10, 17, 60, 61, len(data) - 1):
        with pytest.raises(CorruptRecordException):
            read_batch(data[:cut])
    with pytest.raises(CorruptRecordException):
        RecordBatch(data[:100])


@pytest.mark.parametrize("length", [-1, 0, 48])
def test_impossible_batch_length_raises(length: int) -> None:
    data = bytearray(batch())
    struct.pack_into(">i", data, 8, length)
    with pytest.raises(CorruptRecordException):
        list(iter_batches(bytes(data)))


@pytest.mark.parametrize("magic", [3, 7, 255])
def test_unknown_magic_raises(magic: int) -> None:
    data = bytearray(batch())
    data[16] = magic
    with pytest.raises(CorruptRecordException):
        list(iter_batches(bytes(data)))


@pytest.mark.parametrize("codec", [Compression.NONE, Compression.LZ4])
@pytest.mark.parametrize("count", [0, 19, 21, 1000, -3])
def test_record_count_disagreeing_with_records_raises(codec: Compression, count: int) -> None:
    data = bytearray(batch(codec))
    struct.pack_into(">i", data, 57, count)
    fixed = with_crc(data)
    with pytest.raises(CorruptRecordException):
        consume(fixed)


def test_batch_length_covering_extra_bytes_raises_on_iteration() -> None:
    data = bytearray(batch() + b"\x00" * 8)
    struct.pack_into(">i", data, 8, len(data) - 12)
    with pytest.raises(CorruptRecordException):
        consume(with_crc(data))


def test_record_overrunning_the_batch_raises() -> None:
    data = bytearray(batch(count=1))
    data[61] = 0x7E  # the record's length varint: 63 bytes, more than the batch holds
    with pytest.raises(CorruptRecordException):
        consume(with_crc(data))


@pytest.mark.parametrize("codec_id", [5, 6, 7])
def test_unknown_codec_with_a_valid_crc_raises_unsupported(codec_id: int) -> None:
    data = bytearray(batch())
    struct.pack_into(">h", data, 21, codec_id)
    with pytest.raises(UnsupportedCodecError):
        list(iter_batches(with_crc(data)))
    with pytest.raises(UnsupportedCodecError):
        list(RecordBatch(with_crc(data)))


def test_compressed_payload_that_is_not_what_the_codec_says_raises() -> None:
    data = bytearray(batch(Compression.GZIP))
    struct.pack_into(">h", data, 21, int(Compression.SNAPPY))
    with pytest.raises(CorruptRecordException):
        consume(with_crc(data))


# --- fuzz ------------------------------------------------------------------------------------

VALID = [batch(c, count=6) for c in Compression] + [legacy(0), legacy(1, Compression.SNAPPY)]


def _survive(data: bytes) -> None:
    for validate in (False, True):
        try:
            for b in iter_batches(data, validate_crc=validate):
                for record in b:
                    assert isinstance(record.offset, int)
        except TYPED:
            pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    _survive(data)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(VALID),
       edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1,
                      max_size=4),
       cut=st.none() | st.integers(0, 10_000), refresh_crc=st.booleans())
def test_fuzz_mutated_batches(base: bytes, edits: list[tuple[int, int]], cut: int | None,
                              refresh_crc: bool) -> None:
    data = bytearray(base)
    for pos, value in edits:
        data[pos % len(data)] = value
    if refresh_crc and data[16] == 2 and len(data) > 61:
        # a correct CRC over damaged records gets the mutation past validation
        data = bytearray(with_crc(data))
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    _survive(bytes(data))
