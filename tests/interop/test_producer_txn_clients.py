"""Our transactional producer, judged by librdkafka (confluent-kafka) on the embedded broker.

A read_committed consumer must see exactly the committed records and a read_uncommitted
one every record written; offsets sent to a transaction must be what confluent-kafka's
``committed()`` reports once it commits.  (Tansu does not filter read_committed, so the
embedded broker is the peer here.)
"""

from __future__ import annotations

import time
import uuid

import anyio
import anyio.to_thread
import confluent_kafka
import pytest

from streamclient import AIOKafkaProducer, TopicPartition
from streamclient.broker import EmbeddedCluster

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

PARTITIONS = 3


def consume(bootstrap: str, topic: str, isolation: str, timeout_s: float = 30.0) -> list[bytes]:
    """Every value librdkafka delivers, reading each partition to its end."""
    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex}",
        "isolation.level": isolation, "enable.auto.commit": False,
        "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    try:
        consumer.assign([confluent_kafka.TopicPartition(topic, p, 0)
                         for p in range(PARTITIONS)])
        values: list[bytes] = []
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(at_end) < PARTITIONS:
            assert time.monotonic() < deadline, f"only {at_end} reached their end"
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                assert error.code() == confluent_kafka.KafkaError._PARTITION_EOF, error
                at_end.add(message.partition())
                continue
            at_end.discard(message.partition())
            values.append(message.value())
        return values
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, tps: list[TopicPartition]) -> dict[int, int]:
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                         "enable.auto.commit": False})
    try:
        result = consumer.committed(
            [confluent_kafka.TopicPartition(tp.topic, tp.partition) for tp in tps], timeout=20)
        return {tp.partition: tp.offset for tp in result}
    finally:
        consumer.close()


@pytest.mark.kafka_cluster(nodes=3, partitions=PARTITIONS, replication_factor=3)
async def test_read_committed_sees_exactly_the_committed_records(
        kafka_cluster: EmbeddedCluster) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    topic = "txn-interop"
    committed: list[bytes] = []
    written: list[bytes] = []
    async with AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="interop-txn",
                                linger_ms=2) as producer:
        await producer.partitions_for(topic)
        for round_ in range(6):
            values = [f"r{round_}-{i}".encode() for i in range(200)]
            await producer.begin_transaction()
            futures = [await producer.send(topic, v, key=v) for v in values]
            if round_ % 2 == 0:
                await producer.commit_transaction()
                committed += values
            else:
                for future in futures:  # written, so the abort has records to mark
                    await future
                await producer.abort_transaction()
            await producer.flush()
            assert all(f.done() for f in futures)
            written += [v for v, f in zip(values, futures, strict=True)
                        if f.exception() is None]
    assert len(written) == 1200  # every aborted record reached the log before its abort

    read_committed = await anyio.to_thread.run_sync(
        consume, bootstrap, topic, "read_committed")
    assert sorted(read_committed) == sorted(committed)
    read_uncommitted = await anyio.to_thread.run_sync(
        consume, bootstrap, topic, "read_uncommitted")
    assert sorted(read_uncommitted) == sorted(written)


@pytest.mark.kafka_cluster(nodes=1, partitions=PARTITIONS)
async def test_offsets_sent_to_a_transaction_are_committed_with_it(
        kafka_cluster: EmbeddedCluster) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    source = [TopicPartition("txn-source", p) for p in range(PARTITIONS)]
    async with AIOKafkaProducer(bootstrap_servers=bootstrap,
                                transactional_id="interop-offsets") as producer:
        await producer.partitions_for("txn-source")
        async with producer.transaction():
            await producer.send("txn-sink", b"processed")
            await producer.send_offsets_to_transaction(
                {tp: 10 + tp.partition for tp in source}, "interop-group")
        await producer.begin_transaction()
        await producer.send_offsets_to_transaction({tp: 500 for tp in source}, "interop-group")
        await producer.abort_transaction()
    offsets = await anyio.to_thread.run_sync(
        committed_offsets, bootstrap, "interop-group", source)
    assert offsets == {p: 10 + p for p in range(PARTITIONS)}
