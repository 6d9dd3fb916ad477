"""The codecs in Kafka's framings, and the varints record batches use."""

from __future__ import annotations

import struct
import zlib

import cramjam
import lz4.frame
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from streamclient.errors import CorruptRecordException, UnsupportedCodecError
from streamclient.protocol.records import Compression, compress, decompress
from streamclient.protocol.records.compression import XERIAL_BLOCK_SIZE
from streamclient.protocol.records.varint import (
    decode_uvarint,
    decode_varint,
    encode_uvarint,
    encode_varint,
    size_of_varint,
)

PAYLOAD = b"".join(b'{"id":%d,"event":"click","user":"u-%d"}' % (i, i % 97) for i in range(4000))


@pytest.mark.parametrize("codec", list(Compression))
@pytest.mark.parametrize("size", [0, 1, 1000, len(PAYLOAD)])
def test_round_trip(codec: Compression, size: int) -> None:
    data = PAYLOAD[:size]
    packed = compress(codec, data)
    assert decompress(codec, packed) == data
    assert decompress(codec, memoryview(packed)) == data
    if codec and size == len(PAYLOAD):
        assert len(packed) < len(data) / 2


def test_snappy_is_written_xerial_framed_in_32k_blocks() -> None:
    packed = compress(Compression.SNAPPY, PAYLOAD)
    assert packed[:16] == b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    pos, blocks = 16, []
    while pos < len(packed):
        (size,) = struct.unpack_from(">i", packed, pos)
        blocks.append(bytes(cramjam.snappy.decompress_raw(packed[pos + 4:pos + 4 + size])))
        pos += 4 + size
    assert [len(b) for b in blocks[:-1]] == [XERIAL_BLOCK_SIZE] * (len(blocks) - 1)
    assert b"".join(blocks) == PAYLOAD


def test_raw_snappy_is_read_too() -> None:
    raw = bytes(cramjam.snappy.compress_raw(PAYLOAD))
    assert decompress(Compression.SNAPPY, raw) == PAYLOAD


def test_zstd_frames_without_content_size_and_several_frames() -> None:
    no_size = zstandard.ZstdCompressor(write_content_size=False).compress(PAYLOAD)
    assert zstandard.frame_content_size(no_size) == -1
    assert decompress(Compression.ZSTD, no_size) == PAYLOAD
    two = compress(Compression.ZSTD, PAYLOAD[:500]) + compress(Compression.ZSTD, PAYLOAD[500:])
    assert decompress(Compression.ZSTD, two) == PAYLOAD


def test_gzip_container_and_concatenated_members() -> None:
    packed = compress(Compression.GZIP, PAYLOAD)
    assert packed[:2] == b"\x1f\x8b"
    assert compress(Compression.GZIP, PAYLOAD) == packed  # no mtime: deterministic
    assert decompress(Compression.GZIP, packed + compress(Compression.GZIP, b"tail")) == (
        PAYLOAD + b"tail")


def test_lz4_frames_are_independent_blocks_without_content_size() -> None:
    packed = compress(Compression.LZ4, PAYLOAD)
    flags, block_descriptor = packed[4], packed[5]
    assert flags & 0x20  # block independence
    assert not flags & 0x08 and not flags & 0x04  # no content size, no content checksum
    assert (block_descriptor >> 4) & 0x7 == 4  # 64 KiB maximum block size
    assert lz4.frame.decompress(packed) == PAYLOAD


def test_magic_zero_lz4_uses_the_broken_descriptor_checksum() -> None:
    legacy = compress(Compression.LZ4, PAYLOAD, magic=0)
    standard = compress(Compression.LZ4, PAYLOAD)
    assert legacy[:6] == standard[:6] and legacy[6] != standard[6]
    with pytest.raises(RuntimeError):
        lz4.frame.decompress(legacy)  # a standard reader rejects the old checksum
    assert decompress(Compression.LZ4, legacy, magic=0) == PAYLOAD
    # a magic-0 reader repairs whatever checksum is there, old or new
    assert decompress(Compression.LZ4, standard, magic=0) == PAYLOAD


@pytest.mark.parametrize("codec", [c for c in Compression if c])
def test_garbage_and_truncation_raise_corrupt(codec: Compression) -> None:
    packed = compress(codec, PAYLOAD)
    for bad in (b"\x00garbage-garbage-garbage", packed[: len(packed) // 2], packed[:3]):
        with pytest.raises(CorruptRecordException):
            decompress(codec, bad)


def test_truncated_xerial_blocks_raise_corrupt() -> None:
    packed = compress(Compression.SNAPPY, PAYLOAD)
    for cut in (10, 18, 40):
        with pytest.raises(CorruptRecordException):
            decompress(Compression.SNAPPY, packed[:cut])


def test_unknown_codec_ids() -> None:
    with pytest.raises(UnsupportedCodecError):
        decompress(5, b"x")
    with pytest.raises(UnsupportedCodecError):
        compress(7, b"x")  # type: ignore[arg-type]


def test_explicit_levels_trade_speed_for_size() -> None:
    assert len(compress(Compression.LZ4, PAYLOAD, 9)) < len(compress(Compression.LZ4, PAYLOAD))
    assert len(compress(Compression.GZIP, PAYLOAD, 1)) > len(compress(Compression.GZIP, PAYLOAD))
    assert zlib.decompress(compress(Compression.GZIP, PAYLOAD, 1), 31) == PAYLOAD


# --- varints -------------------------------------------------------------------------------


def _reference_zigzag_varint(value: int) -> bytes:
    zz = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        if zz < 0x80:
            out.append(zz)
            return bytes(out)
        out.append((zz & 0x7F) | 0x80)
        zz >>= 7


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**63), 2**63 - 1))
def test_varint_round_trip(value: int) -> None:
    encoded = encode_varint(value)
    assert encoded == _reference_zigzag_varint(value)
    assert len(encoded) == size_of_varint(value)
    assert decode_varint(encoded + b"\xff", 0) == (value, len(encoded))


def test_varint_edges() -> None:
    assert [encode_varint(v) for v in (0, -1, 1, -64, 63, 64)] == [
        b"\x00", b"\x01", b"\x02", b"\x7f", b"\x7e", b"\x80\x01"]
    assert encode_uvarint(300) == b"\xac\x02"
    assert decode_uvarint(b"\xac\x02", 0) == (300, 2)
    with pytest.raises(ValueError):
        encode_uvarint(-1)
    with pytest.raises(ValueError):
        encode_varint(2**64)
    with pytest.raises(ValueError):
        decode_uvarint(b"\xff" * 11, 0)
    with pytest.raises(IndexError):
        decode_uvarint(b"\xff\xff", 0)
