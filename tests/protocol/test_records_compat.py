"""Byte compatibility with two independent implementations, no broker needed.

kafka-python 3.0.12 (``kafka.record``, pure Python) and aiokafka 0.14 (``aiokafka.record``,
Cython) build batches that we read, and read batches that we build, for every codec;
uncompressed batches built from identical input are byte-identical.  Legacy magic 0/1
message sets go both ways with kafka-python's and aiokafka's legacy builders and readers.
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from aiokafka.record.default_records import DefaultRecordBatch as AioBatch
from aiokafka.record.default_records import DefaultRecordBatchBuilder as AioBuilder
from aiokafka.record.legacy_records import LegacyRecordBatchBuilder as AioLegacyBuilder
from aiokafka.record.memory_records import MemoryRecords as AioMemoryRecords
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch as KpBatch
from kafka.record.default_records import DefaultRecordBatchBuilder as KpBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder as KpLegacyBuilder
from kafka.record.memory_records import MemoryRecords as KpMemoryRecords

from streamclient.protocol.records import (
    Compression,
    ControlRecord,
    ControlRecordType,
    LegacyBatch,
    LegacyRecordBatchBuilder,
    RecordBatch,
    RecordBatchBuilder,
    TimestampType,
    build_control_batch,
    iter_batches,
)

BASE_TS = 1_700_000_000_000
CODECS = list(Compression)


def rows() -> list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]]:
    out: list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]] = []
    for i in range(40):
        key = None if i % 7 == 3 else f"key-{i}".encode()
        value = None if i == 11 else (b"" if i == 5 else f"value-{i}-".encode() * (i % 9 + 1))
        headers: list[tuple[str, bytes | None]] = (
            [] if i % 3 else [("trace", f"t{i}".encode()), ("ünï", b""), ("null", None)])
        # a timestamp below the first one, and a large jump, exercise signed deltas
        ts = BASE_TS - 500 if i == 9 else BASE_TS + i * 37 + (10**7 if i == 30 else 0)
        out.append((ts, key, value, headers))
    return out


def expected(base_offset: int = 0) -> list[tuple[Any, ...]]:
    return [(base_offset + i, ts, k, v, list(h)) for i, (ts, k, v, h) in enumerate(rows())]


def theirs(records: Any) -> list[tuple[Any, ...]]:
    return [(r.offset, r.timestamp, _b(r.key), _b(r.value),
             [(k, _b(v)) for k, v in (r.headers or [])]) for r in records]


def _b(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def build_ours(codec: Compression, **kwargs: Any) -> bytes:
    builder = RecordBatchBuilder(compression=codec, batch_size=1 << 30, **kwargs)
    for ts, key, value, headers in rows():
        builder.append(ts, key, value, headers)
    return builder.build()


def build_kafka_python(codec: Compression, pid: int = -1, epoch: int = -1, seq: int = -1,
                       transactional: bool = False) -> bytes:
    builder = KpBuilder(magic=2, compression_type=int(codec), is_transactional=transactional,
                        producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                        batch_size=1 << 30)
    for offset, (ts, key, value, headers) in enumerate(rows()):
        assert builder.append(offset, ts, key, value, headers) is not None
    data = bytearray(builder.build())
    # kafka-python writes partitionLeaderEpoch 0 where Java's producer writes -1 (no
    # epoch); the field sits outside the CRC, so give it Java's value for comparisons
    data[12:16] = b"\xff\xff\xff\xff"
    return bytes(data)


def build_aiokafka(codec: Compression, pid: int = -1, epoch: int = -1, seq: int = -1,
                   transactional: bool = False) -> bytes:
    builder = AioBuilder(2, int(codec), int(transactional), pid, epoch, seq, 1 << 30)
    for offset, (ts, key, value, headers) in enumerate(rows()):
        assert builder.append(offset, ts, key, value, headers) is not None
    return bytes(builder.build())


BUILDERS = {"kafka-python": build_kafka_python, "aiokafka": build_aiokafka}
READERS = {"kafka-python": KpMemoryRecords, "aiokafka": AioMemoryRecords}


def read_ours(data: bytes) -> tuple[RecordBatch, list[tuple[Any, ...]]]:
    (batch,) = list(iter_batches(data))
    assert isinstance(batch, RecordBatch)
    return batch, [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("other", list(BUILDERS))
def test_we_read_their_batches(other: str, codec: Compression) -> None:
    data = BUILDERS[other](codec, 4000, 2, 100, True)
    batch, records = read_ours(data)
    assert records == expected()
    assert batch.compression == codec
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (4000, 2, 100)
    assert batch.is_transactional
    assert batch.max_timestamp == max(ts for ts, *_ in rows())


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("other", list(READERS))
def test_they_read_our_batches(other: str, codec: Compression) -> None:
    data = build_ours(codec, producer_id=4000, producer_epoch=2, base_sequence=100,
                      is_transactional=True)
    memory = READERS[other](data)
    batch = memory.next_batch()
    assert batch.validate_crc()
    assert batch.compression_type == int(codec)
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (4000, 2, 100)
    assert batch.is_transactional
    assert theirs(batch) == expected()
    assert memory.next_batch() is None


@pytest.mark.parametrize("other", list(BUILDERS))
def test_uncompressed_bytes_are_identical(other: str) -> None:
    ours = build_ours(Compression.NONE, producer_id=12, producer_epoch=1, base_sequence=7)
    assert ours == BUILDERS[other](Compression.NONE, 12, 1, 7)
    # and without producer state
    assert build_ours(Compression.NONE) == BUILDERS[other](Compression.NONE)


@pytest.mark.parametrize("codec", [Compression.SNAPPY, Compression.ZSTD])
def test_deterministic_codecs_produce_the_same_bytes_as_kafka_python(codec) -> None:
    # kafka-python writes xerial snappy with 32 KiB blocks and zstd level 3, as we do
    assert build_ours(codec) == build_kafka_python(codec)


def test_they_read_our_log_append_time_batches() -> None:
    data = build_ours(Compression.NONE, timestamp_type=TimestampType.LOG_APPEND_TIME)
    max_ts = max(ts for ts, *_ in rows())
    for reader in READERS.values():
        batch = reader(data).next_batch()
        assert batch.timestamp_type == 1
        assert {r.timestamp for r in batch} == {max_ts}


maybe_bytes = st.none() | st.binary(max_size=200)
any_rows = st.lists(st.tuples(st.integers(0, 10**9), maybe_bytes, maybe_bytes,
                              st.lists(st.tuples(st.text(max_size=8), maybe_bytes), max_size=3)),
                    min_size=1, max_size=12)


@settings(max_examples=30, deadline=None)
@given(data=any_rows, codec=st.sampled_from([Compression.NONE, Compression.LZ4]))
def test_any_records_are_byte_identical_and_mutually_readable(data, codec) -> None:
    ours = RecordBatchBuilder(compression=codec, batch_size=1 << 30)
    theirs_builder = AioBuilder(2, int(codec), 0, -1, -1, -1, 1 << 30)
    for offset, (ts, key, value, headers) in enumerate(data):
        ours.append(BASE_TS + ts, key, value, headers)
        theirs_builder.append(offset, BASE_TS + ts, key, value, headers)
    ours_data, theirs_data = ours.build(), bytes(theirs_builder.build())
    if codec == Compression.NONE:
        assert ours_data == theirs_data
    want = [(i, BASE_TS + ts, k, v, list(h)) for i, (ts, k, v, h) in enumerate(data)]
    assert read_ours(theirs_data)[1] == want
    assert theirs(KpBatch(ours_data)) == want


@pytest.mark.parametrize("kind", [ControlRecordType.COMMIT, ControlRecordType.ABORT])
def test_control_batches_both_ways(kind: ControlRecordType) -> None:
    data = build_control_batch(kind, producer_id=8, producer_epoch=1, coordinator_epoch=6,
                               timestamp_ms=BASE_TS)
    (marker,) = list(KpBatch(data))
    assert (marker.commit, marker.abort) == (kind == ControlRecordType.COMMIT,
                                             kind == ControlRecordType.ABORT)
    aio = AioBatch(data)
    assert aio.is_control_batch and aio.is_transactional
    (record,) = list(aio)
    assert ControlRecord.decode(record.key, record.value) == ControlRecord(0, kind, 6)


# --- legacy magic 0 and 1 -----------------------------------------------------------------

LEGACY_CODECS = [Compression.NONE, Compression.GZIP, Compression.SNAPPY, Compression.LZ4]


def legacy_rows() -> list[tuple[int, bytes | None, bytes | None]]:
    return [(BASE_TS + i * 3, None if i == 2 else b"k%d" % i, None if i == 4 else b"v%d" % i * i)
            for i in range(12)]


def legacy_ours(magic: int, codec: Compression) -> bytes:
    builder = LegacyRecordBatchBuilder(magic, codec)
    for offset, (ts, key, value) in enumerate(legacy_rows()):
        builder.append(offset, ts, key, value)
    return builder.build()


def legacy_theirs(lib: str, magic: int, codec: Compression) -> bytes:
    cls = KpLegacyBuilder if lib == "kafka-python" else AioLegacyBuilder
    builder = cls(magic, int(codec), 1 << 30)
    for offset, (ts, key, value) in enumerate(legacy_rows()):
        builder.append(offset, ts, key, value)
    return bytes(builder.build())


def read_all(data: bytes) -> list[tuple[Any, ...]]:
    return [(r.offset, r.timestamp, r.key, r.value)
            for batch in iter_batches(data) for r in batch]


def read_theirs(lib: str, data: bytes) -> list[tuple[Any, ...]]:
    memory = READERS[lib](data)
    out = []
    while (batch := memory.next_batch()) is not None:
        assert batch.validate_crc()
        # both libraries give v0 messages a None timestamp where Kafka (and we) say -1
        out += [(r.offset, -1 if r.timestamp is None else r.timestamp, _b(r.key), _b(r.value))
                for r in batch]
    return out


def legacy_params() -> list[Any]:
    params = []
    for lib in ("kafka-python", "aiokafka"):
        for magic in (0, 1):
            for codec in LEGACY_CODECS:
                # neither library writes magic-0 lz4 here (kafka-python needs xxhash,
                # aiokafka refuses); test_records_compression covers that framing
                if magic == 0 and codec == Compression.LZ4:
                    continue
                params.append(pytest.param(lib, magic, codec, id=f"{lib}-v{magic}-{codec.name}"))
    return params


@pytest.mark.parametrize(("lib", "magic", "codec"), legacy_params())
def test_legacy_both_ways(lib: str, magic: int, codec: Compression) -> None:
    theirs_data = legacy_theirs(lib, magic, codec)
    ours_data = legacy_ours(magic, codec)
    assert read_all(theirs_data) == read_theirs(lib, theirs_data)
    assert read_theirs(lib, ours_data) == read_all(ours_data)
    plain_ts = [ts if magic == 1 else -1 for ts, _, _ in legacy_rows()]
    assert [(r[1], r[2], r[3]) for r in read_all(ours_data)] == [
        (ts, k, v) for ts, (_, k, v) in zip(plain_ts, legacy_rows(), strict=True)]
    assert [r[0] for r in read_all(ours_data)] == list(range(12))
    if codec == Compression.NONE:
        assert ours_data == theirs_data


def test_legacy_batch_surface() -> None:
    (wrapper,) = list(iter_batches(legacy_ours(1, Compression.GZIP)))
    assert isinstance(wrapper, LegacyBatch)
    assert wrapper.compression == Compression.GZIP
    assert (wrapper.base_offset, wrapper.last_offset, wrapper.next_offset) == (0, 11, 12)
    assert wrapper.record_count == 12 and wrapper.max_timestamp == BASE_TS + 33
    assert wrapper.timestamp_type == TimestampType.CREATE_TIME
    assert wrapper.producer_id == -1 and not wrapper.is_transactional and not wrapper.is_control
    v0 = list(iter_batches(legacy_ours(0, Compression.NONE)))
    assert len(v0) == 12 and v0[3].timestamp_type == TimestampType.NO_TIMESTAMP_TYPE


def test_legacy_v1_wrapper_offsets_are_relative_and_log_append_time_applies() -> None:
    builder = LegacyRecordBatchBuilder(1, Compression.SNAPPY, log_append_time=True)
    for offset, (ts, key, value) in enumerate(legacy_rows()[:3]):
        builder.append(offset, ts, key, value)
    data = bytearray(builder.build())
    # a broker assigns the wrapper the absolute offset of its last inner message
    data[0:8] = (1002).to_bytes(8, "big")
    data[12:16] = zlib.crc32(bytes(data[16:])).to_bytes(4, "big")
    records = read_all(bytes(data))
    assert [r[0] for r in records] == [1000, 1001, 1002]
    assert {r[1] for r in records} == {BASE_TS + 6}  # the wrapper's timestamp
    assert read_theirs("kafka-python", bytes(data)) == records


def test_mixed_legacy_and_v2_in_one_fetch() -> None:
    data = legacy_ours(1, Compression.NONE) + build_ours(Compression.LZ4, base_offset=12)
    batches = list(iter_batches(data))
    assert [type(b).__name__ for b in batches] == ["LegacyBatch"] * 12 + ["RecordBatch"]
    assert [r.offset for b in batches for r in b] == list(range(12 + len(rows())))
