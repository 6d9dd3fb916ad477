"""The producer's per-record fast paths agree with the general code they shortcut.

* ``RecordAccumulator.append`` for a record without a partition appends straight to the
  sticky partition's open batch; ``_append_sticky`` is the general KIP-794 loop.  Both must
  choose the same partitions, report the same flags and build the same bytes.
* ``RecordBatchBuilder.append`` encodes each record once and keeps ``appended_size``; the
  bytes must be the magic-2 record encoding, computed here independently.
* The handle ``send()`` returns is the accumulator's per-record handle (``RecordFuture``).
* ``FastAppender`` (``send()``'s one call per record) exists in C and in Python: both are
  held to the general loop, with and without the sender already woken.
"""

from __future__ import annotations

import gc
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamclient._native import native_enabled
from streamclient.producer import _cfastpath, fastpath
from streamclient.producer.accumulator import (
    LeaderMap,
    RecordAccumulator,
    RecordAppendResult,
)
from streamclient.producer.config import ProducerConfig
from streamclient.producer.partitioner import UNKNOWN_PARTITION
from streamclient.producer.producer import AIOKafkaProducer, RecordFuture
from streamclient.producer.result import FutureRecordMetadata
from streamclient.protocol.records import RecordBatch, RecordBatchBuilder
from streamclient.protocol.records.batch import HEADER_SIZE
from streamclient.protocol.records.varint import encode_varint
from streamclient.structs import TopicPartition

CLUSTER = LeaderMap({TopicPartition("t", p): 1 + p % 2 for p in range(4)})


class GeneralPathAccumulator(RecordAccumulator):
    """Sends every record without a partition through the general sticky loop."""

    def append(self, topic: str, partition: int, timestamp_ms: int | None,  # type: ignore[override]
               key: bytes | None, value: bytes | None, headers: tuple, cluster: LeaderMap,
               now_ms: int, abort_on_new_batch: bool = False) -> RecordAppendResult:
        if partition >= 0:
            return super().append(topic, partition, timestamp_ms, key, value, headers,
                                  cluster, now_ms, abort_on_new_batch)
        size = (0 if key is None else len(key)) + (0 if value is None else len(value))
        if headers or size > self._quick_limit:
            self._check_record_size(key, value, headers)
        info = self._topics.get(topic) or self._add_topic(topic)
        return self._append_sticky(info, topic, now_ms if timestamp_ms is None else timestamp_ms,
                                   key, value, headers, cluster, now_ms, abort_on_new_batch)


record = st.tuples(
    st.one_of(st.none(), st.binary(max_size=8)),  # key
    st.one_of(st.none(), st.sampled_from([0, 90, 250, 400, 700])),  # value length
    st.booleans(),  # with a header
    st.integers(0, 6),  # 0: drain everything first
)


# The C appender writes into C builders only (it declines the pure-Python ones), so on
# the pure-Python pass (STREAMCLIENT_PURE_PYTHON) only the Python appender is held to the
# general loop; the C one is, on the normal pass.
APPENDERS: dict[str, Any] = {"python": fastpath.FastAppender}
if native_enabled():
    APPENDERS["c"] = _cfastpath.FastAppender


def _accumulator(config: ProducerConfig, seed: int, impl: str) -> RecordAccumulator:
    acc = RecordAccumulator(config, rng=random.Random(seed))
    acc._fast = APPENDERS[impl](acc._topics, None, acc._quick_limit)
    acc._fast_appenders = [acc._fast]
    return acc


@pytest.mark.parametrize("impl", APPENDERS)
@settings(max_examples=40, deadline=None)
@given(records=st.lists(record, min_size=20, max_size=150), seed=st.integers(0, 2**32))
def test_sticky_fast_path_matches_the_general_loop(records: list, seed: int,
                                                   impl: str) -> None:
    config = ProducerConfig(max_batch_size=1024, linger_ms=0)
    fast = _accumulator(config, seed, impl)
    general = GeneralPathAccumulator(config, rng=random.Random(seed))
    built: dict[str, list[tuple[TopicPartition, bytes]]] = {"fast": [], "general": []}
    for i, (key, value_len, with_header, op) in enumerate(records):
        value = None if value_len is None and key is not None else bytes(value_len or 0)
        headers = (("h", b"x"),) if with_header else ()
        results = []
        for name, acc in (("fast", fast), ("general", general)):
            if op == 0:
                for batches in acc.drain(CLUSTER, {1, 2}, 10**6, i).values():
                    built[name] += [(b.topic_partition, b.build()) for b in batches]
            result = acc.append("t", UNKNOWN_PARTITION, 1000 + i, key, value, headers,
                                CLUSTER, i)
            assert result.future is not None
            results.append((result.partition, result.batch_is_full, result.new_batch_created,
                            result.future.relative_offset))
        assert results[0] == results[1]
    for name, acc in (("fast", fast), ("general", general)):
        acc.close()
        for batches in acc.drain(CLUSTER, {1, 2}, 10**9, 10**6).values():
            built[name] += [(b.topic_partition, b.build()) for b in batches]
    assert built["fast"] == built["general"]
    assert (fast.sticky_partitioner("t").current_partition_info.__repr__()
            == general.sticky_partitioner("t").current_partition_info.__repr__())


def _reference_record(offset_delta: int, timestamp_delta: int, key: bytes | None,
                      value: bytes | None, headers: tuple[tuple[str, bytes | None], ...]) -> bytes:
    """A magic-2 record as the protocol describes it (varints are zigzag)."""

    def blob(data: bytes | None) -> bytes:
        return encode_varint(-1) if data is None else encode_varint(len(data)) + data

    body = b"\x00" + encode_varint(timestamp_delta) + encode_varint(offset_delta)
    body += blob(key) + blob(value) + encode_varint(len(headers))
    for name, header_value in headers:
        body += blob(name.encode()) + blob(header_value)
    return encode_varint(len(body)) + body


builder_record = st.tuples(
    st.integers(0, 20_000),  # timestamp delta: beyond the one-byte varints too
    st.one_of(st.none(), st.binary(max_size=300)),
    st.one_of(st.none(), st.binary(max_size=9000)),
    st.lists(st.tuples(st.sampled_from(["a", "trace-id"]),
                       st.one_of(st.none(), st.binary(max_size=20))), max_size=2),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(builder_record, min_size=1, max_size=40), st.sampled_from([0, 1]),
       st.integers(200, 40_000))
def test_builder_appends_the_reference_encoding(records: list, compression: int,
                                                 batch_size: int) -> None:
    builder = RecordBatchBuilder(compression, batch_size=batch_size,
                                 compression_ratio_estimate=0.5)
    expected = b""
    first_ts = 1_700_000_000_000 + records[0][0]  # the first record always fits
    for ts_delta, key, value, headers in records:
        delta = builder.append(1_700_000_000_000 + ts_delta, key, value, tuple(headers))
        # appended_size is what estimated_size says before build, for either outcome
        assert builder.appended_size == builder.estimated_size
        if delta is None:
            assert builder.record_count > 0
            continue
        expected += _reference_record(delta, 1_700_000_000_000 + ts_delta - first_ts,
                                      key, value, tuple(headers))
    if compression == 0:
        assert builder.appended_size == HEADER_SIZE + len(expected)
    out = builder.build()
    assert len(RecordBatch(out)) == builder.record_count
    if compression == 0:
        assert out[HEADER_SIZE:] == expected


def test_send_returns_the_accumulator_handle_itself() -> None:
    producer = AIOKafkaProducer(bootstrap_servers="localhost:1", enable_idempotence=False)
    acc = producer._accumulator
    assert acc.handle_class is RecordFuture
    result = acc.append("t", 0, 5, None, b"v", (), CLUSTER, 0)
    handle = result.future
    assert type(handle) is RecordFuture and isinstance(handle, FutureRecordMetadata)
    assert not handle.done()
    batch = acc.drain(CLUSTER, {1}, 10**6, 0)[1][0]
    acc.complete_batch(batch, 42)
    assert handle.done() and handle.exception() is None
    metadata = handle.result()
    assert metadata is not None and metadata.offset == 42 and metadata.timestamp == 5


@pytest.mark.parametrize("impl", APPENDERS)
@settings(max_examples=40, deadline=None)
@given(records=st.lists(record, min_size=20, max_size=200), seed=st.integers(0, 2**32),
       compression=st.sampled_from([0, 1]))
def test_send_level_fast_path_matches_the_general_loop(records: list, seed: int,
                                                       compression: int, impl: str) -> None:
    """As send() uses it: the appender first (the sender already woken, so queues of
    several batches are served), the general path when it declines."""
    config = ProducerConfig(max_batch_size=1024, linger_ms=0, compression_type=(
        "gzip" if compression else None))
    fast = _accumulator(config, seed, impl)
    general = GeneralPathAccumulator(config, rng=random.Random(seed))
    appender = fast._fast
    built: dict[str, list[tuple[TopicPartition, bytes]]] = {"fast": [], "general": []}
    for i, (key, value_len, _, op) in enumerate(records):
        value = bytes(value_len or 0)
        for name, acc in (("fast", fast), ("general", general)):
            if op == 0:
                for batches in acc.drain(CLUSTER, {1, 2}, 10**6, i).values():
                    built[name] += [(b.topic_partition, b.build()) for b in batches]
        handle = appender.append("t", 1000 + i, key, value, True)
        if handle is None:
            handle = fast.append("t", UNKNOWN_PARTITION, 1000 + i, key, value, (), CLUSTER,
                                 i).future
        other = general.append("t", UNKNOWN_PARTITION, 1000 + i, key, value, (), CLUSTER,
                               i).future
        assert handle is not None and other is not None
        assert (handle.topic_partition, handle.relative_offset, handle.timestamp,
                handle.serialized_key_size, handle.serialized_value_size) == (
            other.topic_partition, other.relative_offset, other.timestamp,
            other.serialized_key_size, other.serialized_value_size)
    for name, acc in (("fast", fast), ("general", general)):
        acc.close()
        for batches in acc.drain(CLUSTER, {1, 2}, 10**9, 10**6).values():
            built[name] += [(b.topic_partition, b.build()) for b in batches]
    assert built["fast"] == built["general"]
    assert repr(fast.sticky_partitioner("t").current_partition_info) == repr(
        general.sticky_partitioner("t").current_partition_info)


class _View:
    def __init__(self, topics: dict[str, Any]) -> None:
        self._topics = topics


@pytest.mark.parametrize("impl", APPENDERS)
def test_fast_appender_declines_what_the_general_path_must_decide(impl: str) -> None:
    config = ProducerConfig(max_batch_size=4096, linger_ms=0)
    acc = _accumulator(config, 1, impl)
    view = _View({"t": ([0, 1, 2, 3], [0, 1, 2, 3], frozenset(range(4)))})
    appender = APPENDERS[impl](acc._topics, view, 1000)
    acc._fast_appenders.append(appender)
    # nothing yet for the topic: the general path opens the first batch
    assert appender.append("t", 5, None, b"v", True) is None
    first = acc.append("t", UNKNOWN_PARTITION, 5, None, b"v", (), CLUSTER, 0).future
    assert first is not None
    handle = appender.append("t", 6, b"k", b"value", True)
    assert handle is not None and handle.relative_offset == 1
    assert (handle.serialized_key_size, handle.serialized_value_size) == (1, 5)
    assert handle.topic_partition == first.topic_partition
    assert appender.append("t", 7, None, bytearray(b"v"), True) is None  # not bytes
    assert appender.append("t", 7, "k", b"v", True) is None  # type: ignore[arg-type]
    assert appender.append("t", 7, None, b"x" * 1001, True) is None  # max_record_size
    assert appender.append("other", 7, None, b"v", True) is None  # no metadata cached
    view._topics = {}  # the metadata changed: send() must look the topic up again
    assert appender.append("t", 7, None, b"v", True) is None
    view._topics = {"t": ([0], [0], frozenset([0]))}
    assert appender.append("t", 7, None, b"v", True) is not None
    assert appender.append("t", 7, None, b"x" * 900, True) is not None
    # a record that would fill the batch: the general path must see it (and wake the sender)
    full = b"x" * 990
    for _ in range(3):
        appender.append("t", 7, None, full, True)
    assert appender.append("t", 7, None, full, True) is None
    result = acc.append("t", UNKNOWN_PARTITION, 7, None, full, (), CLUSTER, 0)
    assert result.batch_is_full or result.new_batch_created
    acc.close()
    assert not appender.enabled
    assert appender.append("t", 7, None, b"v", True) is None


def test_c_handles_are_left_to_reference_counting() -> None:
    config = ProducerConfig(max_batch_size=1 << 20, linger_ms=0)
    acc = RecordAccumulator(config, rng=random.Random(1))
    acc._fast = _cfastpath.FastAppender(acc._topics, None, acc._quick_limit)
    acc.handle_class = RecordFuture
    acc.append("t", UNKNOWN_PARTITION, 5, None, b"v", (), CLUSTER, 0)
    handle = acc._fast.append("t", None, None, b"v", True)
    if not native_enabled():
        assert handle is None  # a pure-Python builder is left to the Python path
        return
    assert type(handle) is RecordFuture
    assert not gc.is_tracked(handle)
    assert handle.timestamp > 1_600_000_000_000  # stamped with the wall clock
    seen: list[object] = []
    handle.add_done_callback(seen.append)  # a callback that refers back to the handle
    batch = acc.drain(CLUSTER, {1, 2}, 10**9, 0)
    (only,) = [b for batches in batch.values() for b in batches]
    acc.complete_batch(only, 100)
    assert seen == [handle] and handle._callbacks is None
    assert handle.result().offset == 101
