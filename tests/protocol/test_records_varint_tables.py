"""``zigzag_tables``: every one- and two-byte varint against the plain decoder."""

from __future__ import annotations

from streamclient.protocol.records.varint import decode_varint, encode_varint, zigzag_tables


def test_one_byte_table_matches_the_decoder() -> None:
    one, _ = zigzag_tables()
    assert len(one) == 0x80
    for b in range(0x80):
        assert one[b] == decode_varint(bytes([b]), 0)[0]


def test_two_byte_table_matches_the_decoder_for_every_pair() -> None:
    _, two = zigzag_tables()
    for b in range(0x80, 0x100):
        row = two[b]
        assert len(row) == 0x80
        for c in range(0x80):
            # c == 0 is an over-long encoding of a one-byte value: still legal
            assert row[c] == decode_varint(bytes([b, c]), 0)[0]


def test_every_value_of_two_bytes_or_fewer_is_found() -> None:
    one, two = zigzag_tables()
    for value in range(-8192, 8192):
        encoded = encode_varint(value)
        found = one[encoded[0]] if len(encoded) == 1 else two[encoded[0]][encoded[1]]
        assert found == value
