"""The C record decoder (``consumer/_cdecode.c``) against its Python twin: on well-formed
sections both build the same records; on corrupted ones the C decoder declines (``None``)
wherever the Python one does, and whatever it does return equals the Python result."""

from __future__ import annotations

import gc
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streamclient.consumer import _cdecode
from streamclient.consumer import records as py_records
from streamclient.protocol.records import RecordBatch, RecordBatchBuilder
from streamclient.structs import ConsumerRecord

c_decode = _cdecode.decode_consumer_records
py_decode = py_records._decode_consumer_records

blob = st.one_of(st.none(), st.binary(max_size=200))
header = st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=10)))
record = st.tuples(st.integers(0, 2**40), blob, blob, st.lists(header, max_size=2))


def _section(records: list[tuple[Any, ...]]) -> tuple[bytes, int, int, int]:
    builder = RecordBatchBuilder(batch_size=1 << 30, base_offset=0)
    for ts, key, value, headers in records:
        builder.append(ts, key, value, headers)
    batch = RecordBatch(builder.build())
    return batch.records_data(), batch.record_count, batch.base_offset, batch.first_timestamp


def _fields(out: list[ConsumerRecord[Any, Any]] | None) -> list[tuple[Any, ...]] | None:
    if out is None:
        return None
    return [(r.topic, r.partition, r.offset, r.timestamp, r.timestamp_type, r.key, r.value,
             r.checksum, r.serialized_key_size, r.serialized_value_size, tuple(r.headers))
            for r in out]


def _both(data: bytes, count: int, base_offset: int, base_ts: int) -> tuple[Any, Any]:
    args = (data, count, base_offset, base_ts, "t", 7, 0)
    return _fields(c_decode(*args)), _fields(py_decode(*args))


@settings(max_examples=200, deadline=None)
@given(records=st.lists(record, min_size=1, max_size=30), base_offset=st.integers(0, 2**40))
def test_well_formed_sections_decode_alike(records: list[tuple[Any, ...]],
                                           base_offset: int) -> None:
    data, count, _, base_ts = _section(records)
    c, py = _both(data, count, base_offset, base_ts)
    assert c is not None and c == py
    assert [r[5:7] for r in c] == [(k, v) for _, k, v, _ in records]


@settings(max_examples=400, deadline=None)
@given(records=st.lists(record, min_size=1, max_size=8), data=st.data())
def test_corrupted_sections_never_decode_differently(records: list[tuple[Any, ...]],
                                                     data: st.DataObject) -> None:
    section, count, base_offset, base_ts = _section(records)
    mutated = bytearray(section)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        where = data.draw(st.integers(0, max(len(mutated) - 1, 0)))
        if kind == "flip" and mutated:
            mutated[where] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del mutated[where:where + data.draw(st.integers(1, 5))]
        else:
            mutated[where:where] = data.draw(st.binary(min_size=1, max_size=3))
    count = data.draw(st.sampled_from([count, count - 1, count + 1, 0]))
    c, py = _both(bytes(mutated), count, base_offset, base_ts)
    if py is None:
        assert c is None
    else:
        assert c is None or c == py


def test_explicit_record_class_and_header_reader_are_used() -> None:
    data, count, base_offset, base_ts = _section([(5, b"k", b"v", [("h", b"x")])])
    seen: list[tuple[int, int]] = []

    def read_headers(record: bytes, start: int, end: int) -> tuple[Any, int]:
        seen.append((start, end))
        return py_records.decode_headers(record, start, end)

    out = c_decode(data, count, base_offset, base_ts, "t", 0, 1, ConsumerRecord,
                   read_headers, ())
    assert out is not None and out[0].headers == (("h", b"x"),) and len(seen) == 1
    assert out[0].timestamp_type == 1 and out[0].offset == base_offset
    # left to reference counting: the collector need not walk what a fetcher holds
    assert not gc.is_tracked(out[0])
