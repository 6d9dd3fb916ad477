"""The C RecordWriter against its pure-Python twin: the same appends give the same
answers, the same bytes and the same fields, and the same errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamclient.protocol.records._cwriter import RecordWriter as CWriter

from streamclient._native import native_enabled
from streamclient.errors import IllegalArgumentError, IllegalStateError
from streamclient.protocol.records import RecordBatch, RecordBatchBuilder
from streamclient.protocol.records import writer as py_writer

PyWriter = py_writer.RecordWriter

FIELDS = ("_count", "_factor", "_first_ts", "_max_ts", "appended_size", "batch_size")

blob = st.one_of(st.none(), st.binary(max_size=300))
headers = st.lists(st.tuples(st.text(max_size=8), st.one_of(st.none(), st.binary(max_size=20))),
                   max_size=3)
timestamp = st.one_of(st.none(), st.integers(0, 2**45), st.just(-1))
record = st.tuples(timestamp, blob, blob, headers)


def _state(w: Any) -> tuple[Any, ...]:
    return (bytes(w._buf), *(getattr(w, f) for f in FIELDS))


@settings(max_examples=300, deadline=None)
@given(batch_size=st.integers(61, 3000), factor=st.sampled_from([1.0, 0.5, 1.05, 2.3]),
       records=st.lists(record, max_size=40))
def test_c_and_python_writers_agree(batch_size: int, factor: float,
                                    records: list[tuple[Any, ...]]) -> None:
    c, p = CWriter(batch_size, factor), PyWriter(batch_size, factor)
    assert _state(c) == _state(p)
    for ts, key, value, hdrs in records:
        assert c.append(ts, key, value, hdrs) == p.append(ts, key, value, hdrs)
        assert _state(c) == _state(p)


@given(records=st.lists(record, min_size=1, max_size=30))
def test_native_builder_batches_read_back(records: list[tuple[Any, ...]]) -> None:
    builder = RecordBatchBuilder(batch_size=1 << 30)
    # the extension is what the package uses, unless told otherwise
    assert isinstance(builder, CWriter) == native_enabled()
    for ts, key, value, hdrs in records:
        builder.append(ts, key, value, hdrs)
    read = list(RecordBatch(builder.build()))
    assert [(r.key, r.value, list(r.headers)) for r in read] == [
        (k, v, [(n, h) for n, h in hd]) for _, k, v, hd in records]


@pytest.mark.parametrize("cls", [CWriter, PyWriter], ids=["c", "python"])
def test_bytes_likes_keyword_arguments_and_errors(cls: type[Any]) -> None:
    w = cls(1000)
    assert w.append(5, bytearray(b"k"), memoryview(b"value")) == 0
    assert w.append(timestamp_ms=6, key=None, value=b"v", headers=[("a", None)]) == 1
    with pytest.raises(IllegalArgumentError):
        w.append(7, "text", b"v")
    with pytest.raises(IllegalArgumentError):
        w.append(7, None, 12)
    with pytest.raises(IllegalArgumentError, match="negative timestamp"):
        w.append(-5, None, b"v")
    with pytest.raises(IllegalArgumentError, match="out of range"):
        w.append(2**63, None, b"v")
    with pytest.raises(IllegalArgumentError, match="header"):
        w.append(7, None, b"v", [(1, b"x")])
    assert w._count == 2  # a failed append writes nothing
    w._built = bytearray(w._buf)
    with pytest.raises(IllegalStateError):
        w.append(8, None, b"v")


@pytest.mark.parametrize("cls", [CWriter, PyWriter], ids=["c", "python"])
def test_full_batch_refuses_without_writing(cls: type[Any]) -> None:
    w = cls(200)
    assert w.append(1, None, b"x" * 500) == 0  # the first record always fits
    before = bytes(w._buf)
    assert w.append(1, None, b"y") is None
    assert bytes(w._buf) == before and w._count == 1
