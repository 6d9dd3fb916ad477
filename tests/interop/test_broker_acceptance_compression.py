"""Issue 3 acceptance: every compression codec round-trips between clients via the broker.

For each codec and each producing client, the records (keys, values, headers) are read
back by both other clients, exactly and in order.  The broker's log must hold the batches
compressed with that codec, so the test proves the codec crossed the wire, not only that
the clients agree with themselves.

The tests run on asyncio (aiokafka is asyncio-only) against a ``BlockingEmbeddedCluster``
on its own thread; the blocking clients run in worker threads.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.to_thread
import pytest

from streamclient.broker import BlockingEmbeddedCluster
from streamclient.protocol.records import Compression, iter_batches

pytestmark = [pytest.mark.interop, pytest.mark.anyio]

DEADLINE_S = 30.0
CODECS = {"gzip": Compression.GZIP, "snappy": Compression.SNAPPY, "lz4": Compression.LZ4,
          "zstd": Compression.ZSTD}
CLIENTS = ["aiokafka", "confluent_kafka", "kafka_python"]

Row = tuple[bytes | None, bytes, list[tuple[str, bytes]]]

# compressible on purpose: a client may send a batch uncompressed when that is smaller
ROWS: list[Row] = [
    (b"key-%d" % i,
     b"value %d " % i + b"abcdefgh" * (i % 7) * 40,
     [("index", b"%d" % i), ("repeat", b"r"), ("repeat", b"again")] if i % 3 == 0 else [])
    for i in range(60)
] + [
    (None, b"no key here", [("empty", b"")]),
    (b"", b"", [("unicode-\u00e9", "caf\u00e9".encode())]),
    (b"big", b"0123456789" * 20_000, [("size", b"200000")]),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def cluster() -> Iterator[BlockingEmbeddedCluster]:
    with BlockingEmbeddedCluster(3, group_initial_rebalance_delay_ms=0,
                                 offsets_topic_num_partitions=3,
                                 transaction_state_log_num_partitions=3) as running:
        yield running
    assert running.errors == []


# -- producers --------------------------------------------------------------------------

def produce_confluent_kafka(bootstrap: str, topic: str, codec: str) -> None:
    import confluent_kafka as ck

    producer = ck.Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                            "linger.ms": 50, "enable.idempotence": True})
    for key, value, headers in ROWS:
        producer.produce(topic, key=key, value=value, headers=headers, partition=0)
    assert producer.flush(DEADLINE_S) == 0


def produce_kafka_python(bootstrap: str, topic: str, codec: str) -> None:
    import kafka

    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, compression_type=codec,
                                   linger_ms=50, enable_idempotence=True)
    try:
        futures = [producer.send(topic, key=key, value=value, headers=headers, partition=0)
                   for key, value, headers in ROWS]
        producer.flush(DEADLINE_S)
        for future in futures:
            assert future.succeeded(), future.exception
    finally:
        producer.close(timeout=10)


async def produce_aiokafka(bootstrap: str, topic: str, codec: str) -> None:
    import aiokafka

    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type=codec,
                                         linger_ms=50, enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value, headers=headers,
                                       partition=0)
                   for key, value, headers in ROWS]
        for future in futures:
            await future
    finally:
        await producer.stop()


# -- readers: everything up to ``end``, as rows -----------------------------------------

def read_confluent_kafka(bootstrap: str, topic: str, end: int) -> list[Row]:
    import confluent_kafka as ck

    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                            "enable.auto.commit": False})
    rows: list[Row] = []
    try:
        consumer.assign([ck.TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + DEADLINE_S
        while consumer.position([ck.TopicPartition(topic, 0)])[0].offset < end:
            assert time.monotonic() < deadline, f"read {len(rows)} rows of {topic}"
            for msg in consumer.consume(100, 0.2):
                assert msg.error() is None, msg.error()
                rows.append((msg.key(), msg.value(), list(msg.headers() or [])))
    finally:
        consumer.close()
    return rows


def read_kafka_python(bootstrap: str, topic: str, end: int) -> list[Row]:
    import kafka

    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                   enable_auto_commit=False)
    partition = kafka.TopicPartition(topic, 0)
    rows: list[Row] = []
    try:
        consumer.assign([partition])
        consumer.seek_to_beginning()
        deadline = time.monotonic() + DEADLINE_S
        while consumer.position(partition) < end:
            assert time.monotonic() < deadline, f"read {len(rows)} rows of {topic}"
            for records in consumer.poll(timeout_ms=200).values():
                rows.extend((r.key, r.value, list(r.headers)) for r in records)
    finally:
        consumer.close()
    return rows


async def read_aiokafka(bootstrap: str, topic: str, end: int) -> list[Row]:
    import aiokafka

    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                         enable_auto_commit=False)
    partition = aiokafka.TopicPartition(topic, 0)
    rows: list[Row] = []
    await consumer.start()
    try:
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        with anyio.fail_after(DEADLINE_S):
            while await consumer.position(partition) < end:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    rows.extend((r.key, r.value, list(r.headers)) for r in records)
    finally:
        await consumer.stop()
    return rows


PRODUCERS = {"aiokafka": produce_aiokafka, "confluent_kafka": produce_confluent_kafka,
             "kafka_python": produce_kafka_python}
READERS = {"aiokafka": read_aiokafka, "confluent_kafka": read_confluent_kafka,
           "kafka_python": read_kafka_python}


async def run_client(fn: Any, *args: Any) -> Any:
    """Await an asyncio client's coroutine, or run a blocking client in a worker thread."""
    if fn in (produce_aiokafka, read_aiokafka):
        return await fn(*args)
    return await anyio.to_thread.run_sync(functools.partial(fn, *args))


def stored_batches(cluster: BlockingEmbeddedCluster, topic: str) -> list[tuple[int, int]]:
    """(compression id, record count) of every batch in the partition's log."""
    def read() -> list[tuple[int, int]]:
        log = cluster.state.partition_log(topic, 0)
        assert log is not None
        data = log.read(0, 64 * 1024 * 1024).records
        return [(int(batch.compression), len(batch)) for batch in iter_batches(data)]
    return cluster.call(read)


@pytest.mark.parametrize("producer", CLIENTS)
@pytest.mark.parametrize("codec", sorted(CODECS))
async def test_codec_round_trips_to_the_other_clients(
        cluster: BlockingEmbeddedCluster, codec: str, producer: str) -> None:
    topic = f"codec-{codec}-{producer}"
    cluster.call(lambda: cluster.state.create_topic(topic, 1, 3))
    with anyio.fail_after(DEADLINE_S):
        await run_client(PRODUCERS[producer], cluster.bootstrap_servers, topic, codec)

    batches = stored_batches(cluster, topic)
    assert sum(count for _, count in batches) == len(ROWS)
    # every batch holding more than one record was compressed with the codec asked for
    assert {c for c, count in batches if count > 1} == {int(CODECS[codec])}, batches

    for reader in CLIENTS:
        if reader == producer:
            continue
        rows = await run_client(READERS[reader], cluster.bootstrap_servers, topic, len(ROWS))
        assert rows == ROWS, f"{reader} read {producer}'s {codec} records differently"
