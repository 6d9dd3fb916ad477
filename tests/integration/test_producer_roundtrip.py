"""AIOKafkaProducer against the embedded broker: records go out and come back as sent.

Records are read back with raw Fetch requests through ``ClusterClient`` and decoded with
``iter_batches``, so the check does not depend on our consumer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import anyio
import pytest
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from streamclient import AIOKafkaProducer, TopicPartition
from streamclient.broker import EmbeddedCluster
from streamclient.cluster import ClusterClient
from streamclient.errors import (
    IllegalArgumentError,
    IllegalOperation,
    IllegalStateError,
    MessageSizeTooLargeError,
    ProducerClosed,
)
from streamclient.producer.config import ProducerConfigError
from streamclient.protocol.messages.fetch import FetchRequest
from streamclient.protocol.records import iter_batches
from streamclient.structs import RecordMetadata

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def read_topic(bootstrap: str, topic: str, partitions: Sequence[int], *,
                     isolation_level: int = 0) -> dict[int, list[Any]]:
    """Every data record of the partitions, by raw Fetch (control batches skipped)."""
    out: dict[int, list[Any]] = {}
    async with ClusterClient(bootstrap_servers=bootstrap) as client:
        await client.wait_for_topic(topic, 10_000)
        for partition in partitions:
            tp = TopicPartition(topic, partition)
            leader = await client.leader(tp)
            version = min(await client.version_for(leader, FetchRequest), 12)
            records: list[Any] = []
            offset = 0
            while True:
                request = FetchRequest(
                    replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=32 << 20,
                    isolation_level=isolation_level,
                    topics=[FetchRequest.FetchTopic(topic=topic, partitions=[
                        FetchRequest.FetchTopic.FetchPartition(
                            partition=partition, fetch_offset=offset,
                            partition_max_bytes=16 << 20)])])
                response = await client.send(leader, request, version)
                part = response.responses[0].partitions[0]
                assert part.error_code == 0, part
                end = (part.last_stable_offset if isolation_level and part.last_stable_offset >= 0
                       else part.high_watermark)
                for batch in iter_batches(bytes(part.records or b"")):
                    if not batch.is_control:
                        records.extend(r for r in batch if r.offset >= offset)
                    offset = max(offset, batch.next_offset)
                if offset >= end:
                    break
            out[partition] = records
    return out


async def test_round_trip_keys_headers_timestamps(kafka_cluster: EmbeddedCluster) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    sent: list[tuple[bytes | None, bytes, int | None, list[tuple[str, bytes | None]]]] = []
    async with AIOKafkaProducer(bootstrap_servers=bootstrap) as producer:
        futures = []
        before = int(time.time() * 1000)
        for i in range(300):
            key = None if i % 7 == 0 else f"k{i}".encode()
            timestamp = 1_600_000_000_000 + i if i % 2 else None
            headers = [("h", f"{i}".encode()), ("null", None)] if i % 3 else []
            value = f"value-{i}".encode()
            sent.append((key, value, timestamp, headers))
            futures.append(await producer.send("rt", value, key=key, partition=0,
                                               timestamp_ms=timestamp, headers=headers))
        metas = [await f for f in futures]
        after = int(time.time() * 1000)
    records = (await read_topic(bootstrap, "rt", [0]))[0]
    assert len(records) == 300
    for i, (record, meta, (key, value, timestamp, headers)) in enumerate(
            zip(records, metas, sent, strict=True)):
        assert isinstance(meta, RecordMetadata)
        assert (meta.topic, meta.partition, meta.offset) == ("rt", 0, record.offset)
        assert record.offset == i
        assert (record.key, record.value) == (key, value)
        assert list(record.headers) == headers
        if timestamp is None:
            assert before <= record.timestamp <= after
        else:
            assert record.timestamp == timestamp
        assert meta.timestamp == record.timestamp and meta.timestamp_type == 0


@pytest.mark.kafka_cluster(nodes=3, partitions=5)
async def test_keyed_records_land_where_murmur2_says(kafka_cluster: EmbeddedCluster) -> None:
    keys = [f"user-{i}".encode() for i in range(200)] + [b"", b"a", b"\x00 "]
    async with AIOKafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers) as producer:
        futures = [await producer.send("keyed", b"v", key=k) for k in keys]
        metas = [await f for f in futures]
    for key, meta in zip(keys, metas, strict=True):
        # kafka-python's murmur2 is an implementation independent of ours (Java's)
        assert meta is not None and meta.partition == (kafka_python_murmur2(key) & 0x7FFFFFFF) % 5
    assert len({m.partition for m in metas if m is not None}) == 5


@pytest.mark.kafka_cluster(nodes=3, partitions=4)
async def test_keyless_records_fill_partitions_and_read_back(kafka_cluster: EmbeddedCluster
                                                             ) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    async with AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=2048) as producer:
        futures = [await producer.send("sticky", f"{i:05d}".encode() * 20) for i in range(2000)]
        await producer.flush()
        assert all(f.done() and f.exception() is None for f in futures)
    by_partition = await read_topic(bootstrap, "sticky", range(4))
    values = sorted(r.value for records in by_partition.values() for r in records)
    assert values == sorted(f"{i:05d}".encode() * 20 for i in range(2000))
    # the uniform sticky partitioner moves on after a batch or two: all partitions used
    assert all(by_partition[p] for p in range(4))


@pytest.mark.kafka_cluster(nodes=1, partitions=3)
async def test_explicit_partition_and_unknown_partition(kafka_cluster: EmbeddedCluster) -> None:
    async with AIOKafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers) as producer:
        meta = await producer.send_and_wait("explicit", b"x", partition=2)
        assert meta is not None and (meta.partition, meta.offset) == (2, 0)
        assert await producer.partitions_for("explicit") == {0, 1, 2}
        with pytest.raises(IllegalArgumentError, match="partition 7"):
            await producer.send("explicit", b"x", partition=7)
        meta = await producer.send_and_wait("explicit", b"y", partition=2)
        assert meta is not None and meta.offset == 1


async def test_acks_zero_resolves_to_none(kafka_cluster: EmbeddedCluster) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    async with AIOKafkaProducer(bootstrap_servers=bootstrap, acks=0) as producer:
        futures = [await producer.send("noack", f"{i}".encode(), partition=0)
                   for i in range(500)]
        assert [await f for f in futures] == [None] * 500
    records = (await read_topic(bootstrap, "noack", [0]))[0]
    assert [r.value for r in records] == [f"{i}".encode() for i in range(500)]


async def test_flush_delivers_everything(kafka_cluster: EmbeddedCluster) -> None:
    async with AIOKafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers,
                                linger_ms=10_000) as producer:
        futures = [await producer.send("flush", b"x" * 50) for _ in range(3000)]
        # a long linger: only flush makes these batches go now
        assert not all(f.done() for f in futures)
        with anyio.fail_after(10):
            await producer.flush()
        assert all(f.done() and f.exception() is None for f in futures)
        offsets = sorted((f.result().partition, f.result().offset) for f in futures)
        assert len(set(offsets)) == 3000


async def test_oversized_record_is_refused_and_nothing_else_is_lost(
        kafka_cluster: EmbeddedCluster) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    async with AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=10_000,
                                linger_ms=50) as producer:
        first = await producer.send("big", b"before", partition=0)
        with pytest.raises(MessageSizeTooLargeError, match="max_request_size"):
            await producer.send("big", b"x" * 20_000, partition=0)
        last = await producer.send("big", b"after", partition=0)
        await producer.flush()
        assert (first.result().offset, last.result().offset) == (0, 1)
    records = (await read_topic(bootstrap, "big", [0]))[0]
    assert [r.value for r in records] == [b"before", b"after"]


async def test_serializers_and_send_batch(kafka_cluster: EmbeddedCluster) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    async with AIOKafkaProducer(bootstrap_servers=bootstrap,
                                key_serializer=lambda k: k.encode(),
                                value_serializer=lambda v: repr(v).encode()) as producer:
        meta = await producer.send_and_wait("ser", {"a": 1}, key="k1", partition=0)
        assert meta is not None and meta.offset == 0
        batch = producer.create_batch()
        for i in range(10):
            assert batch.append(key=f"b{i}", value=i, timestamp=None) is not None
        assert batch.record_count() == 10 and batch.size() > 0
        future = await producer.send_batch(batch, "ser", partition=0)
        meta = await future
        assert meta is not None and meta.offset == 1  # the batch's base offset
        assert batch.append(key="late", value=0, timestamp=None) is None  # closed
    records = (await read_topic(bootstrap, "ser", [0]))[0]
    assert [(r.key, r.value) for r in records] == (
        [(b"k1", b"{'a': 1}")] + [(f"b{i}".encode(), repr(i).encode()) for i in range(10)])


async def test_bad_values_get_clear_errors(kafka_cluster: EmbeddedCluster) -> None:
    async with AIOKafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers) as producer:
        with pytest.raises(TypeError, match="value_serializer"):
            await producer.send("bad", "a str")
        with pytest.raises(TypeError, match="key_serializer"):
            await producer.send("bad", b"v", key=123)
        with pytest.raises(IllegalArgumentError, match="key or value"):
            await producer.send("bad")
        with pytest.raises(IllegalOperation, match="transaction_id"):
            await producer.begin_transaction()
        meta = await producer.send_and_wait("bad", b"still fine")
        assert meta is not None and meta.offset == 0


def test_construction_needs_no_event_loop_and_validates() -> None:
    producer = AIOKafkaProducer(bootstrap_servers="localhost:1", acks="all", linger_ms=5)
    assert "new" in repr(producer)
    with pytest.raises(TypeError, match="no_such_option"):
        AIOKafkaProducer(no_such_option=1)
    with pytest.raises(ValueError, match="Invalid ACKS parameter"):
        AIOKafkaProducer(acks=2)
    with pytest.raises(ProducerConfigError, match="Invalid compression type"):
        AIOKafkaProducer(compression_type="brotli")
    with pytest.raises(ValueError, match="acks=1 not supported"):
        AIOKafkaProducer(acks=1, enable_idempotence=True)
    with pytest.raises(ValueError, match="linger_ms"):
        AIOKafkaProducer(linger_ms=-1)


async def test_lifecycle_errors(kafka_cluster: EmbeddedCluster) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers)
    with pytest.raises(IllegalStateError, match="not started"):
        await producer.send("life", b"x")
    await producer.start()
    with pytest.raises(IllegalStateError, match="start"):
        await producer.start()

    stop_error: list[BaseException] = []

    async def stop_elsewhere() -> None:
        try:
            await producer.stop()
        except IllegalStateError as exc:
            stop_error.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_elsewhere)
    assert len(stop_error) == 1 and "task that called start()" in str(stop_error[0])
    future = await producer.send("life", b"x")
    await producer.stop()  # delivers what was sent first
    assert future.done() and future.result() is not None
    await producer.stop()  # idempotent
    with pytest.raises(ProducerClosed):
        await producer.send("life", b"x")
    with pytest.raises(ProducerClosed):
        await producer.flush()
