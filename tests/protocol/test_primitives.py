"""The primitive readers and writers, against the protocol guide's encodings."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamclient.errors import ProtocolDecodeError
from streamclient.protocol import primitives as p
from streamclient.protocol.primitives import Reader

FEW = settings(max_examples=50, deadline=None, database=None)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (2**32 - 1, b"\xff\xff\xff\xff\x0f"),
    ],
)
def test_unsigned_varint(value: int, encoded: bytes) -> None:
    assert p.encode_uvarint(value) == encoded
    assert Reader(encoded).uvarint() == value


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (-1, b"\x01"),
        (1, b"\x02"),
        (-2, b"\x03"),
        (63, b"\x7e"),
        (-64, b"\x7f"),
        (64, b"\x80\x01"),
        (2**31 - 1, b"\xfe\xff\xff\xff\x0f"),
        (-(2**31), b"\xff\xff\xff\xff\x0f"),
    ],
)
def test_zigzag_varint(value: int, encoded: bytes) -> None:
    assert p.encode_varint(value) == encoded
    assert Reader(encoded).varint() == value


@FEW
@given(st.integers(-(2**63), 2**63 - 1))
def test_varlong_round_trip(value: int) -> None:
    r = Reader(p.encode_varlong(value))
    assert r.varlong() == value
    assert r.remaining == 0


def test_varint_range_is_enforced() -> None:
    with pytest.raises(ValueError):
        p.encode_varint(2**31)
    with pytest.raises(ValueError):
        p.encode_uvarint(-1)
    with pytest.raises(ProtocolDecodeError, match="too long"):
        Reader(b"\xff\xff\xff\xff\xff\x01").uvarint()
    with pytest.raises(ProtocolDecodeError, match="truncated varint"):
        Reader(b"\x80\x80").uvarint()


def test_fixed_width_writers_and_readers() -> None:
    buf = bytearray()
    p.write_int8(buf, -2)
    p.write_int16(buf, -3)
    p.write_int32(buf, 70000)
    p.write_int64(buf, -(2**40))
    p.write_uint16(buf, 65535)
    p.write_uint32(buf, 2**32 - 1)
    p.write_float64(buf, 1.5)
    p.write_bool(buf, True)
    u = uuid.uuid4()
    p.write_uuid(buf, u)
    assert bytes(buf[:7]) == b"\xfe\xff\xfd\x00\x01\x11\x70"
    r = Reader(bytes(buf))
    assert (r.int8(), r.int16(), r.int32(), r.int64()) == (-2, -3, 70000, -(2**40))
    assert (r.uint16(), r.uint32(), r.float64(), r.boolean()) == (65535, 2**32 - 1, 1.5, True)
    assert r.uuid() == u
    assert r.remaining == 0


def test_strings() -> None:
    buf = bytearray()
    p.write_string(buf, "hé")
    p.write_string(buf, None)
    p.write_compact_string(buf, "ab")
    p.write_compact_string(buf, None)
    assert bytes(buf) == b"\x00\x03h\xc3\xa9" + b"\xff\xff" + b"\x03ab" + b"\x00"
    r = Reader(bytes(buf))
    assert r.string() == "hé"
    assert r.nullable_string() is None
    assert r.compact_string() == "ab"
    assert r.compact_nullable_string() is None
    with pytest.raises(ProtocolDecodeError, match="null"):
        Reader(b"\xff\xff").string()
    with pytest.raises(ProtocolDecodeError, match="invalid string length -2"):
        Reader(b"\xff\xfe").nullable_string()
    with pytest.raises(ProtocolDecodeError, match="UTF-8") as info:
        Reader(b"\x00\x01\xff").string()
    assert info.value.offset == 2


def test_bytes_are_zero_copy_slices() -> None:
    buf = bytearray()
    p.write_bytes(buf, b"xyz")
    p.write_compact_bytes(buf, b"q")
    p.write_bytes(buf, None)
    p.write_compact_bytes(buf, None)
    data = bytes(buf)
    r = Reader(data)
    first = r.bytes_()
    assert first == b"xyz"
    assert first.obj is data
    assert r.compact_bytes() == b"q"
    assert r.nullable_bytes() is None
    assert r.compact_nullable_bytes() is None


def test_arrays() -> None:
    buf = bytearray()
    p.write_array_length(buf, 2)
    p.write_int32(buf, 1)
    p.write_int32(buf, 2)
    p.write_compact_array_length(buf, 1)
    p.write_int8(buf, 9)
    p.write_array_length(buf, None)
    p.write_compact_array_length(buf, None)
    r = Reader(bytes(buf))
    assert r.array(Reader.int32) == [1, 2]
    assert r.compact_array(Reader.int8) == [9]
    assert r.array(Reader.int32) is None
    assert r.compact_array(Reader.int8) is None
    # a count larger than the bytes left is refused before any element is read
    with pytest.raises(ProtocolDecodeError, match="exceeds"):
        Reader(b"\x7f\xff\xff\xff").array(Reader.int8)


def test_tagged_fields() -> None:
    buf = bytearray()
    p.write_tagged_fields(buf, {5: b"five", 1: b"\x01"})
    assert bytes(buf) == b"\x02\x01\x01\x01\x05\x04five"
    assert Reader(bytes(buf)).tagged_fields() == {1: b"\x01", 5: b"five"}
    empty = bytearray()
    p.write_tagged_fields(empty, None)
    assert empty == b"\x00"


@pytest.mark.parametrize(
    "read",
    [
        Reader.int8,
        Reader.int16,
        Reader.int32,
        Reader.int64,
        Reader.uint16,
        Reader.uint32,
        Reader.float64,
        Reader.boolean,
        Reader.uuid,
        Reader.uvarint,
        Reader.varint,
        Reader.varlong,
        Reader.string,
        Reader.compact_string,
        Reader.bytes_,
        Reader.compact_bytes,
        Reader.array_length,
        Reader.compact_array_length,
        Reader.tagged_fields,
    ],
)
def test_short_reads_raise_decode_errors(read: object) -> None:
    with pytest.raises(ProtocolDecodeError) as info:
        read(Reader(b""))  # type: ignore[operator]
    assert info.value.offset == 0
    for data in (b"\x00", b"\x00\x05ab", b"\x7f", b"\x80"):
        r = Reader(data)
        try:
            read(r)  # type: ignore[operator]
        except ProtocolDecodeError as exc:
            assert exc.offset is not None


@FEW
@given(st.binary(max_size=32))
def test_random_bytes_only_raise_decode_errors(data: bytes) -> None:
    r = Reader(data)
    for read in (
        Reader.compact_string,
        Reader.string,
        Reader.compact_bytes,
        Reader.tagged_fields,
        Reader.varlong,
    ):
        r.pos = 0
        with contextlib.suppress(ProtocolDecodeError):
            read(r)


def test_reader_accepts_non_byte_memoryviews() -> None:
    words = memoryview(bytearray(b"\x00\x01\x00\x02")).cast("H")
    assert Reader(words).int16() == 1
