"""KafkaProducer transactions: committed records visible to a read_committed reader
(confluent-kafka's and ours), aborted ones not; consume-transform-produce with the
consumer's offsets committed in the transaction."""

from __future__ import annotations

import time

import pytest
from tests.sync.producing import Produce

from streamclient.broker.cluster import BlockingEmbeddedCluster
from streamclient.structs import OffsetAndMetadata, TopicPartition
from streamclient.sync import KafkaAdminClient, KafkaConsumer, KafkaProducer


def read_committed_confluent(bootstrap: str, topic: str, end: int) -> list[bytes]:
    import confluent_kafka as ck

    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "reader",
                            "enable.auto.commit": False, "isolation.level": "read_committed"})
    values: list[bytes] = []
    try:
        consumer.assign([ck.TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 30
        while consumer.position([ck.TopicPartition(topic, 0)])[0].offset < end:
            assert time.monotonic() < deadline, f"read {values}"
            for msg in consumer.consume(100, 0.2):
                assert msg.error() is None, msg.error()
                values.append(msg.value())
    finally:
        consumer.close()
    return values


@pytest.mark.interop
def test_transactions_read_by_confluent_kafka_read_committed(
    kafka_cluster_sync: BlockingEmbeddedCluster,
) -> None:
    bootstrap = kafka_cluster_sync.bootstrap_servers
    with KafkaProducer(bootstrap_servers=bootstrap, transactional_id="tx-1") as producer:
        producer.init_transactions()
        producer.begin_transaction()
        first = [producer.send("tx", b"c1-%d" % i, partition=0) for i in range(10)]
        producer.commit_transaction()
        assert all(f.done() and f.succeeded() for f in first)
        producer.begin_transaction()
        aborted = [producer.send("tx", b"a-%d" % i, partition=0) for i in range(5)]
        producer.flush()  # written to the log, so the reader must skip them
        assert [f.get(0).offset for f in aborted] == [11, 12, 13, 14, 15]
        producer.abort_transaction()
        producer.begin_transaction()
        last = [producer.send("tx", b"c2-%d" % i, partition=0) for i in range(3)]
        producer.commit_transaction()
        assert [f.get(0).offset for f in last] == [17, 18, 19]
    # 10 + marker, 5 aborted + marker, 3 + marker
    end = last[-1].get(0).offset + 2
    expected = [b"c1-%d" % i for i in range(10)] + [b"c2-%d" % i for i in range(3)]
    assert read_committed_confluent(bootstrap, "tx", end) == expected


@pytest.mark.kafka_cluster(partitions=1)
def test_consume_transform_produce(
    kafka_cluster_sync: BlockingEmbeddedCluster, produce: Produce
) -> None:
    bootstrap = kafka_cluster_sync.bootstrap_servers
    produce("in", 0, 6)
    source = TopicPartition("in", 0)
    with KafkaConsumer("in", bootstrap_servers=bootstrap, group_id="ctp",
                       auto_offset_reset="earliest", enable_auto_commit=False,
                       isolation_level="read_committed") as consumer, \
            KafkaProducer(bootstrap_servers=bootstrap, transactional_id="tx-ctp") as producer:
        producer.init_transactions()
        done = 0
        deadline = time.monotonic() + 20
        while done < 6:
            assert time.monotonic() < deadline
            records = consumer.poll(timeout_ms=500, max_records=4)
            if not records:
                continue
            producer.begin_transaction()
            for record in records[source]:
                producer.send("out", record.value.upper(), partition=0)
            done += len(records[source])
            producer.send_offsets_to_transaction({source: records[source][-1].offset + 1},
                                                 consumer.group_metadata())
            producer.commit_transaction()
    with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
        assert admin.list_consumer_group_offsets("ctp") == {source: OffsetAndMetadata(6, "")}
    with KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                       auto_offset_reset="earliest", consumer_timeout_ms=1000) as reader:
        reader.assign([TopicPartition("out", 0)])
        assert [r.value for r in reader] == [b"V%d" % i for i in range(6)]
