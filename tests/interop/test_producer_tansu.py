"""AIOKafkaProducer against Tansu (an independent broker), read back by confluent-kafka.

Tansu's InitProducerId v0-v2 fail (see the Tansu reference notes), so this also checks
that the idempotent producer negotiates a version that works.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import anyio
import anyio.to_thread
import confluent_kafka
import pytest

from streamclient import AIOKafkaProducer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

COUNT = 100_000
PARTITIONS = 4


def consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 90.0
                ) -> list[tuple[int, bytes]]:
    """Every record of the topic as (partition, value), read by librdkafka to the end."""
    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex}",
        "enable.auto.commit": False, "enable.partition.eof": True,
        "auto.offset.reset": "earliest"})
    try:
        consumer.assign([confluent_kafka.TopicPartition(topic, p, 0)
                         for p in range(PARTITIONS)])
        records: list[tuple[int, bytes]] = []
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = consumer.consume(num_messages=10_000, timeout=1.0)
            for message in batch:
                error = message.error()
                if error is not None:
                    if error.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                        at_end.add(message.partition())
                        continue
                    raise AssertionError(f"consumer error: {error}")
                at_end.discard(message.partition())
                records.append((message.partition(), message.value()))
            if len(records) >= expected and len(at_end) == PARTITIONS:
                break
        return records
    finally:
        consumer.close()


async def test_100k_idempotent_records_read_back_exactly_once(
        tansu_bootstrap: str, tansu: Any, topic_name: str) -> None:
    async with tansu.connection() as conn:
        await tansu.create_topic(conn, topic_name, PARTITIONS)
    async with AIOKafkaProducer(bootstrap_servers=tansu_bootstrap, acks="all",
                                enable_idempotence=True, linger_ms=5,
                                max_batch_size=128 * 1024) as producer:
        await producer.partitions_for(topic_name)
        futures = []
        for i in range(COUNT):
            futures.append(await producer.send(topic_name, b"%08d" % i, key=b"k%d" % (i % 997)))
        with anyio.fail_after(120):
            await producer.flush()
    failed = [f.exception() for f in futures if f.exception() is not None]
    assert not failed, failed[:3]
    sent_per_partition = Counter(f.result().partition for f in futures)
    assert len(sent_per_partition) == PARTITIONS

    records = await anyio.to_thread.run_sync(consume_all, tansu_bootstrap, topic_name, COUNT)
    values = [value for _, value in records]
    assert len(values) == COUNT, f"read {len(values)} records, sent {COUNT}"
    assert set(values) == {b"%08d" % i for i in range(COUNT)}  # no loss, no duplicate
    assert Counter(p for p, _ in records) == sent_per_partition
    # each partition in send order (ids grow within a partition)
    for partition in range(PARTITIONS):
        ids = [int(v) for p, v in records if p == partition]
        assert ids == sorted(ids)
