"""Clients nobody here wrote produce to and consume from the embedded broker unchanged."""

from __future__ import annotations

import asyncio
import time

import aiokafka
import confluent_kafka
import kafka
import pytest

from streamclient.broker import BlockingEmbeddedCluster

pytestmark = pytest.mark.interop

COUNT = 200


def create_topic(cluster: BlockingEmbeddedCluster, name: str, partitions: int, rf: int) -> None:
    cluster.call(lambda: cluster.state.create_topic(name, partitions, rf,
                                                    {"min.insync.replicas": "2"}))


def test_confluent_kafka_idempotent_produce_and_assign_consume() -> None:
    with BlockingEmbeddedCluster(3) as cluster:
        create_topic(cluster, "ck", 3, 3)
        producer = confluent_kafka.Producer({
            "bootstrap.servers": cluster.bootstrap_servers, "enable.idempotence": True,
            "acks": "all", "linger.ms": 5})
        delivered: list[tuple[int, int]] = []
        failures: list[object] = []

        def on_delivery(err: object, msg: object) -> None:
            if err is not None:
                failures.append(err)
            else:
                delivered.append((msg.partition(), msg.offset()))  # type: ignore[attr-defined]

        for i in range(COUNT):
            producer.produce("ck", key=b"k%d" % i, value=b"v%d" % i, on_delivery=on_delivery)
        assert producer.flush(30) == 0
        assert failures == [] and len(delivered) == COUNT
        per_partition = {p: sorted(o for q, o in delivered if q == p) for p, _ in delivered}
        for offsets in per_partition.values():
            assert offsets == list(range(len(offsets)))  # no gaps, no duplicates

        consumer = confluent_kafka.Consumer({
            "bootstrap.servers": cluster.bootstrap_servers, "group.id": "unused",
            "enable.auto.commit": False, "isolation.level": "read_committed"})
        try:
            consumer.assign([confluent_kafka.TopicPartition("ck", p, 0) for p in range(3)])
            values: set[bytes] = set()
            deadline = time.monotonic() + 30
            while len(values) < COUNT and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                assert msg.error() is None, msg.error()
                values.add(msg.value())
            assert values == {b"v%d" % i for i in range(COUNT)}
            low, high = consumer.get_watermark_offsets(
                confluent_kafka.TopicPartition("ck", 0), timeout=10)
            assert low == 0 and high == len(per_partition.get(0, []))
        finally:
            consumer.close()
        assert cluster.errors == []


def test_kafka_python_produce_and_assign_consume() -> None:
    with BlockingEmbeddedCluster(3) as cluster:
        create_topic(cluster, "kp", 2, 3)
        producer = kafka.KafkaProducer(bootstrap_servers=cluster.bootstrap_servers, acks="all",
                                       compression_type="gzip", enable_idempotence=True)
        try:
            futures = [producer.send("kp", key=b"k%d" % i, value=b"v%d" % i) for i in range(COUNT)]
            producer.flush(30)
            metadata = [f.get(timeout=30) for f in futures]
        finally:
            producer.close(timeout=10)
        assert len({(m.partition, m.offset) for m in metadata}) == COUNT
        consumer = kafka.KafkaConsumer(bootstrap_servers=cluster.bootstrap_servers,
                                       enable_auto_commit=False, group_id=None,
                                       consumer_timeout_ms=10_000)
        try:
            consumer.assign([kafka.TopicPartition("kp", p) for p in range(2)])
            consumer.seek_to_beginning()
            values = set()
            for message in consumer:
                values.add(message.value)
                if len(values) == COUNT:
                    break
            assert values == {b"v%d" % i for i in range(COUNT)}
            end = consumer.end_offsets([kafka.TopicPartition("kp", p) for p in range(2)])
            assert sum(end.values()) == COUNT
        finally:
            consumer.close()
        assert cluster.errors == []


def test_confluent_kafka_transactions_read_committed() -> None:
    with BlockingEmbeddedCluster(3) as cluster:
        create_topic(cluster, "tx", 1, 3)
        producer = confluent_kafka.Producer({
            "bootstrap.servers": cluster.bootstrap_servers, "transactional.id": "tx-1"})
        producer.init_transactions(30)
        producer.begin_transaction()
        for i in range(5):
            producer.produce("tx", value=b"aborted-%d" % i)
        producer.flush(30)
        producer.abort_transaction(30)
        producer.begin_transaction()
        for i in range(5):
            producer.produce("tx", value=b"committed-%d" % i)
        producer.commit_transaction(30)

        def consume(isolation: str, expected: int) -> list[bytes]:
            consumer = confluent_kafka.Consumer({
                "bootstrap.servers": cluster.bootstrap_servers, "group.id": "unused",
                "enable.auto.commit": False, "isolation.level": isolation})
            got: list[bytes] = []
            try:
                consumer.assign([confluent_kafka.TopicPartition("tx", 0, 0)])
                deadline = time.monotonic() + 20
                while len(got) < expected and time.monotonic() < deadline:
                    msg = consumer.poll(0.5)
                    if msg is not None and msg.error() is None:
                        got.append(msg.value())
            finally:
                consumer.close()
            return got

        assert consume("read_committed", 5) == [b"committed-%d" % i for i in range(5)]
        assert len(consume("read_uncommitted", 10)) == 10
        log = cluster.call(lambda: cluster.state.partition_log("tx", 0))
        assert log is not None
        # 5 aborted records, ABORT marker, 5 committed records, COMMIT marker
        assert (log.high_watermark, log.last_stable_offset) == (12, 12)
        assert [(t.first_offset, t.last_offset) for t in log.aborted_transactions(0, 12)] == [(0, 5)]
        assert cluster.errors == []


def test_confluent_kafka_survives_a_leader_stop() -> None:
    with BlockingEmbeddedCluster(3) as cluster:
        create_topic(cluster, "failover", 1, 3)
        producer = confluent_kafka.Producer({
            "bootstrap.servers": cluster.bootstrap_servers, "enable.idempotence": True,
            "acks": "all", "topic.metadata.refresh.interval.ms": 1000})
        failures: list[object] = []

        def on_delivery(err: object, msg: object) -> None:
            if err is not None:
                failures.append(err)

        for i in range(50):
            producer.produce("failover", value=b"%d" % i, on_delivery=on_delivery)
        assert producer.flush(30) == 0
        leader = cluster.call(lambda: cluster.state.partition_leader("failover", 0))
        cluster.stop_node(leader)
        for i in range(50, 100):
            producer.produce("failover", value=b"%d" % i, on_delivery=on_delivery)
        assert producer.flush(60) == 0
        assert failures == []
        consumer = confluent_kafka.Consumer({
            "bootstrap.servers": cluster.bootstrap_servers, "group.id": "unused",
            "enable.auto.commit": False})
        try:
            consumer.assign([confluent_kafka.TopicPartition("failover", 0, 0)])
            values: list[bytes] = []
            deadline = time.monotonic() + 30
            while len(values) < 100 and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is not None and msg.error() is None:
                    values.append(msg.value())
        finally:
            consumer.close()
        # in order, no gaps, no duplicates across the leader change
        assert values == [b"%d" % i for i in range(100)]
        assert cluster.errors == []


def test_aiokafka_produce_and_assign_consume() -> None:
    async def run(bootstrap: str) -> list[bytes]:
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                             enable_idempotence=True)
        await producer.start()
        try:
            for i in range(COUNT):
                await producer.send("aio", b"v%d" % i, partition=i % 2)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                             enable_auto_commit=False,
                                             isolation_level="read_committed")
        await consumer.start()
        try:
            consumer.assign([aiokafka.TopicPartition("aio", p) for p in range(2)])
            await consumer.seek_to_beginning()
            values: list[bytes] = []
            deadline = time.monotonic() + 30
            while len(values) < COUNT and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                values += [m.value for msgs in batches.values() for m in msgs]
            return values
        finally:
            await consumer.stop()

    with BlockingEmbeddedCluster(3) as cluster:
        create_topic(cluster, "aio", 2, 3)
        values = asyncio.run(run(cluster.bootstrap_servers))
        assert sorted(values) == sorted(b"v%d" % i for i in range(COUNT))
        assert cluster.errors == []
