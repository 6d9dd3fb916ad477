"""Issue 3 acceptance: 100 000 records through a 3-node embedded cluster, per client.

Each client (unchanged) produces idempotently with acks=all to a 6-partition topic and
reads everything back through a consumer group.  A record's value carries its global id
and its sequence number within its partition, so the reader can prove exact count, no
duplicate, per-partition order, and that the committed offsets equal the positions it
consumed to.

confluent-kafka and kafka-python block, so they use a ``BlockingEmbeddedCluster``;
aiokafka runs on the test's asyncio loop next to an ``EmbeddedCluster``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from streamclient.broker import BlockingEmbeddedCluster, EmbeddedCluster

pytestmark = [pytest.mark.interop, pytest.mark.slow]

COUNT = 100_000
PARTITIONS = 6
TOPIC = "volume"
GROUP = "volume-readers"
DEADLINE_S = 60.0
CLUSTER_OPTIONS: dict[str, Any] = {
    "group_initial_rebalance_delay_ms": 0,
    "offsets_topic_num_partitions": 3,
    "transaction_state_log_num_partitions": 3,
}


def payload(record_id: int) -> bytes:
    """Value of record ``record_id``: it goes to partition ``id % 6`` as its ``id // 6``-th."""
    return b"%d:%d:%d" % (record_id, record_id % PARTITIONS, record_id // PARTITIONS)


class Tally:
    """What a reader saw, checked record by record as it arrives."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.duplicates: list[int] = []
        self.last_seq: dict[int, int] = {}
        self.out_of_order: list[tuple[int, int, int]] = []
        self.misplaced: list[tuple[int, int]] = []
        self.next_offset: dict[int, int] = {}

    def add(self, partition: int, offset: int, value: bytes) -> None:
        record_id, intended, seq = (int(x) for x in value.split(b":"))
        if record_id in self.ids:
            self.duplicates.append(record_id)
        self.ids.add(record_id)
        if intended != partition:
            self.misplaced.append((record_id, partition))
        previous = self.last_seq.get(partition, -1)
        if seq <= previous:
            self.out_of_order.append((partition, previous, seq))
        self.last_seq[partition] = seq
        self.next_offset[partition] = offset + 1

    def assert_complete(self) -> None:
        assert self.duplicates == []
        assert self.misplaced == []
        assert self.out_of_order == []
        assert self.ids == set(range(COUNT))
        # ids are dense per partition, so the last sequence number is the count - 1
        assert {p: s + 1 for p, s in self.last_seq.items()} == {
            p: len(range(p, COUNT, PARTITIONS)) for p in range(PARTITIONS)}


def create_topic(cluster: BlockingEmbeddedCluster) -> None:
    cluster.call(lambda: cluster.state.create_topic(
        TOPIC, PARTITIONS, 3, {"min.insync.replicas": "2"}))


@pytest.fixture
def cluster() -> Iterator[BlockingEmbeddedCluster]:
    with BlockingEmbeddedCluster(3, **CLUSTER_OPTIONS) as running:
        create_topic(running)
        yield running
    assert running.errors == []


def test_confluent_kafka_idempotent_volume_through_a_group(
        cluster: BlockingEmbeddedCluster) -> None:
    import confluent_kafka as ck

    producer = ck.Producer({
        "bootstrap.servers": cluster.bootstrap_servers, "enable.idempotence": True,
        "acks": "all", "linger.ms": 20, "batch.num.messages": 10_000,
        "queue.buffering.max.messages": COUNT + 1000})
    failures: list[Any] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(err)

    for i in range(COUNT):
        producer.produce(TOPIC, value=payload(i), partition=i % PARTITIONS,
                         on_delivery=on_delivery)
    assert producer.flush(DEADLINE_S) == 0
    assert failures == []

    consumer = ck.Consumer({
        "bootstrap.servers": cluster.bootstrap_servers, "group.id": GROUP,
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
        "auto.offset.reset": "earliest", "enable.auto.commit": False})
    tally = Tally()
    try:
        consumer.subscribe([TOPIC])
        deadline = time.monotonic() + DEADLINE_S
        while len(tally.ids) < COUNT and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, 0.5):
                assert msg.error() is None, msg.error()
                tally.add(msg.partition(), msg.offset(), msg.value())
        tally.assert_complete()
        consumer.commit(asynchronous=False)
        committed = consumer.committed(
            [ck.TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=10)
        positions = consumer.position(
            [ck.TopicPartition(TOPIC, p) for p in range(PARTITIONS)])
    finally:
        consumer.close()
    assert {tp.partition: tp.offset for tp in committed} == tally.next_offset
    assert {tp.partition: tp.offset for tp in positions} == tally.next_offset
    assert_log_ends(cluster, tally.next_offset)


def test_kafka_python_idempotent_volume_through_a_group(
        cluster: BlockingEmbeddedCluster) -> None:
    import kafka

    producer = kafka.KafkaProducer(
        bootstrap_servers=cluster.bootstrap_servers, enable_idempotence=True, acks="all",
        linger_ms=20, batch_size=256 * 1024)
    try:
        futures = [producer.send(TOPIC, value=payload(i), partition=i % PARTITIONS)
                   for i in range(COUNT)]
        producer.flush(DEADLINE_S)
        for future in futures:
            assert future.succeeded(), future.exception
    finally:
        producer.close(timeout=10)

    consumer = kafka.KafkaConsumer(
        TOPIC, bootstrap_servers=cluster.bootstrap_servers, group_id=GROUP,
        session_timeout_ms=6000, heartbeat_interval_ms=500, auto_offset_reset="earliest",
        enable_auto_commit=False, max_poll_records=10_000)
    tally = Tally()
    partitions = [kafka.TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(tally.ids) < COUNT and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                for record in records:
                    tally.add(tp.partition, record.offset, record.value)
        tally.assert_complete()
        consumer.commit()
        committed = {tp.partition: consumer.committed(tp) for tp in partitions}
        positions = {tp.partition: consumer.position(tp) for tp in partitions}
    finally:
        consumer.close()
    assert committed == tally.next_offset
    assert positions == tally.next_offset
    assert_log_ends(cluster, tally.next_offset)


def assert_log_ends(cluster: BlockingEmbeddedCluster, next_offset: dict[int, int]) -> None:
    """The consumed positions are the partitions' ends: nothing was left unread."""
    def ends() -> dict[int, int]:
        logs = [cluster.state.partition_log(TOPIC, p) for p in range(PARTITIONS)]
        return {p: log.high_watermark for p, log in enumerate(logs) if log is not None}
    assert cluster.call(ends) == next_offset


@pytest.fixture
def anyio_backend() -> str:
    # aiokafka is built on asyncio
    return "asyncio"


@pytest.mark.anyio
async def test_aiokafka_idempotent_volume_through_a_group() -> None:
    import aiokafka
    import anyio

    async with EmbeddedCluster(3, **CLUSTER_OPTIONS) as cluster:
        cluster.state.create_topic(TOPIC, PARTITIONS, 3, {"min.insync.replicas": "2"})
        producer = aiokafka.AIOKafkaProducer(
            bootstrap_servers=cluster.bootstrap_servers, enable_idempotence=True, acks="all",
            linger_ms=20, max_batch_size=256 * 1024)
        await producer.start()
        try:
            with anyio.fail_after(DEADLINE_S):
                futures = [await producer.send(TOPIC, payload(i), partition=i % PARTITIONS)
                           for i in range(COUNT)]
                await producer.flush()
                for future in futures:
                    await future
        finally:
            await producer.stop()

        consumer = aiokafka.AIOKafkaConsumer(
            TOPIC, bootstrap_servers=cluster.bootstrap_servers, group_id=GROUP,
            session_timeout_ms=6000, heartbeat_interval_ms=500,
            auto_offset_reset="earliest", enable_auto_commit=False)
        tally = Tally()
        partitions = [aiokafka.TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        await consumer.start()
        try:
            with anyio.fail_after(DEADLINE_S):
                while len(tally.ids) < COUNT:
                    batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
                    for tp, records in batches.items():
                        for record in records:
                            tally.add(tp.partition, record.offset, record.value)
            tally.assert_complete()
            await consumer.commit()
            committed = {tp.partition: await consumer.committed(tp) for tp in partitions}
            positions = {tp.partition: await consumer.position(tp) for tp in partitions}
        finally:
            await consumer.stop()
        assert committed == tally.next_offset
        assert positions == tally.next_offset
        ends = {p: log.high_watermark for p in range(PARTITIONS)
                if (log := cluster.state.partition_log(TOPIC, p)) is not None}
        assert ends == tally.next_offset
    assert cluster.errors == []
