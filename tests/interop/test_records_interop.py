"""Record batches across implementations, through Tansu, for every codec.

- batches built by our ``RecordBatchBuilder`` are produced by our connection, fetched back
  and decoded by our reader, and consumed intact by confluent-kafka (librdkafka);
- batches written by confluent-kafka and by kafka-python are fetched by our connection and
  decoded by our reader.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import pytest

from streamclient.protocol.records import Compression, RecordBatchBuilder

if TYPE_CHECKING:
    from conftest import TansuWire

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
COUNT = 30
BASE_TS = 1_700_000_000_000
CLIENT_DEADLINE_S = 30.0

Header = tuple[str, bytes]
Expected = tuple[int, bytes | None, bytes | None, list[Header], int]


def expected_records() -> list[Expected]:
    """(offset, key, value, headers, timestamp): compressible values, a null key, no headers."""
    rows: list[Expected] = []
    for i in range(COUNT):
        key = None if i == 3 else f"key-{i}".encode()
        value = (f"value-{i}-".encode() * (i + 1)) if i != 5 else b""
        headers = [] if i % 4 == 0 else [("trace", f"t{i}".encode()), ("empty", b"")]
        rows.append((i, key, value, headers, BASE_TS + i * 17))
    return rows


def ours(records: list[Any]) -> list[Expected]:
    return [(r.offset, _b(r.key), _b(r.value), [(k, _b(v)) for k, v in r.headers], r.timestamp)
            for r in records]


def _b(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


# --- ours → Tansu → ours and librdkafka ----------------------------------------------


async def produce_ours(tansu: TansuWire, topic: str, codec: str) -> None:
    builder = RecordBatchBuilder(compression=Compression[codec.upper()],
                                 batch_size=1024 * 1024)
    for offset, key, value, headers, ts in expected_records():
        assert builder.append(ts, key, value, headers) == offset
    async with tansu.connection() as conn:
        await tansu.create_topic(conn, topic)
        assert await tansu.produce(conn, topic, 0, builder.build()) == 0


@pytest.mark.parametrize("codec", CODECS)
async def test_our_batches_round_trip_through_tansu(tansu: TansuWire, topic_name: str,
                                                   codec: str) -> None:
    await produce_ours(tansu, topic_name, codec)
    async with tansu.connection() as conn:
        records = await tansu.fetch_records(conn, topic_name, 0, COUNT)
    assert ours(records) == expected_records()


def confluent_consume(bootstrap: str, topic: str, count: int) -> list[Expected]:
    from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"reader-{topic}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "socket.timeout.ms": 10_000,
    })
    rows: list[Expected] = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + CLIENT_DEADLINE_S
        while len(rows) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            ts_type, ts = message.timestamp()
            assert ts_type == TIMESTAMP_CREATE_TIME
            headers = [(k, v) for k, v in (message.headers() or [])]
            rows.append((message.offset(), message.key(), message.value(), headers, ts))
    finally:
        consumer.close()
    return rows


@pytest.mark.parametrize("codec", CODECS)
async def test_confluent_consumes_our_batches(tansu: TansuWire, topic_name: str,
                                              codec: str) -> None:
    await produce_ours(tansu, topic_name, codec)
    rows = await anyio.to_thread.run_sync(confluent_consume, tansu.bootstrap, topic_name, COUNT)
    assert rows == expected_records()


# --- other producers → Tansu → ours --------------------------------------------------


def confluent_produce(bootstrap: str, topic: str, codec: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "compression.type": codec,
        "linger.ms": 20,
        "acks": "all",
    })
    failures: list[Any] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(err)

    for _, key, value, headers, ts in expected_records():
        producer.produce(topic, value=value, key=key, headers=headers or None, partition=0,
                         timestamp=ts, on_delivery=on_delivery)
    assert producer.flush(CLIENT_DEADLINE_S) == 0, "confluent-kafka did not deliver in time"
    assert failures == []


def kafka_python_produce(bootstrap: str, topic: str, codec: str) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=[bootstrap],
        compression_type=None if codec == "none" else codec,
        linger_ms=20,
        acks="all",
        request_timeout_ms=int(CLIENT_DEADLINE_S * 1000),
    )
    try:
        futures = [
            producer.send(topic, value=value, key=key, headers=headers, partition=0,
                          timestamp_ms=ts)
            for _, key, value, headers, ts in expected_records()
        ]
        producer.flush(timeout=CLIENT_DEADLINE_S)
        for future in futures:
            future.get(timeout=CLIENT_DEADLINE_S)
    finally:
        producer.close(timeout=5)


async def check_produced_by(tansu: TansuWire, topic: str, codec: str, produce: Any) -> None:
    async with tansu.connection() as conn:
        await tansu.create_topic(conn, topic)
    await anyio.to_thread.run_sync(produce, tansu.bootstrap, topic, codec)
    async with tansu.connection() as conn:
        records = await tansu.fetch_records(conn, topic, 0, COUNT)
        assert ours(records) == expected_records()
        # the batches really carry the codec we asked for
        part = await tansu.fetch_once(conn, topic, 0, 0)
    from streamclient.protocol.records import iter_batches

    codecs = {batch.compression for batch in iter_batches(part.records)}
    assert codecs == {Compression[codec.upper()]}


@pytest.mark.parametrize("codec", CODECS)
async def test_confluent_produced_records_decode(tansu: TansuWire, topic_name: str,
                                                 codec: str) -> None:
    await check_produced_by(tansu, topic_name, codec, confluent_produce)


@pytest.mark.parametrize("codec", CODECS)
async def test_kafka_python_produced_records_decode(tansu: TansuWire, topic_name: str,
                                                    codec: str) -> None:
    await check_produced_by(tansu, topic_name, codec, kafka_python_produce)
