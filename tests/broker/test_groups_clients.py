"""librdkafka (through confluent-kafka) uses the embedded broker's coordinators unchanged:
consumer groups with eager and cooperative assignment, committed offsets, and transactions."""

from __future__ import annotations

import time
from typing import Any

import pytest

from streamclient.broker import BlockingEmbeddedCluster

pytestmark = pytest.mark.interop

ck = pytest.importorskip("confluent_kafka")

TOPIC = "shared"
PARTITIONS = 6


def _cluster() -> BlockingEmbeddedCluster:
    return BlockingEmbeddedCluster(
        3, group_initial_rebalance_delay_ms=0, offsets_topic_num_partitions=5,
        transaction_state_log_num_partitions=3,
    )


def _create_topic(cluster: BlockingEmbeddedCluster, name: str, partitions: int) -> None:
    cluster.call(lambda: cluster.state.create_topic(name, partitions, 1))


def _consumer(cluster: BlockingEmbeddedCluster, group: str, **extra: Any) -> Any:
    return ck.Consumer({
        "bootstrap.servers": cluster.bootstrap_servers,
        "group.id": group,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        **extra,
    })


def _poll_until(consumers: list[Any], done: Any, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for c in consumers:
            msg = c.poll(0.1)
            assert msg is None or msg.error() is None, msg.error()
        if done():
            return
    raise AssertionError("timed out waiting for the group")


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_two_consumers_share_six_partitions(strategy: str) -> None:
    with _cluster() as cluster:
        _create_topic(cluster, TOPIC, PARTITIONS)
        group = f"g-{strategy}"
        consumers = [
            _consumer(cluster, group, **{"partition.assignment.strategy": strategy})
            for _ in range(2)
        ]
        try:
            for c in consumers:
                c.subscribe([TOPIC])

            def balanced() -> bool:
                sizes = [len(c.assignment()) for c in consumers]
                return sizes == [3, 3]

            _poll_until(consumers, balanced)
            owned = [tp.partition for c in consumers for tp in c.assignment()]
            assert sorted(owned) == list(range(PARTITIONS))

            first = consumers[0]
            offsets = [ck.TopicPartition(TOPIC, tp.partition, 10 + tp.partition)
                       for tp in first.assignment()]
            first.commit(offsets=offsets, asynchronous=False)
        finally:
            for c in consumers:
                c.close()
        assert cluster.errors == []

        reader = _consumer(cluster, group)
        try:
            committed = reader.committed(
                [ck.TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=10
            )
        finally:
            reader.close()
        by_partition = {tp.partition: tp.offset for tp in committed}
        for tp in offsets:
            assert by_partition[tp.partition] == tp.offset
        described = cluster.call(lambda: cluster.state.groups.groups[group].state.value)
        assert described == "Empty"  # both members left on close


def test_transactions_commit_and_abort_read_committed() -> None:
    with _cluster() as cluster:
        _create_topic(cluster, "tx", 2)
        producer = ck.Producer({
            "bootstrap.servers": cluster.bootstrap_servers,
            "transactional.id": "tx-app",
            "transaction.timeout.ms": 30000,
        })
        producer.init_transactions(15)
        producer.begin_transaction()
        for i in range(5):
            producer.produce("tx", key=b"k", value=b"committed-%d" % i, partition=i % 2)
        producer.commit_transaction(15)
        producer.begin_transaction()
        for i in range(5):
            producer.produce("tx", key=b"k", value=b"aborted-%d" % i, partition=i % 2)
        producer.flush(15)
        producer.abort_transaction(15)
        producer.begin_transaction()
        producer.produce("tx", value=b"committed-last", partition=0)
        producer.commit_transaction(15)

        consumer = _consumer(cluster, "tx-reader", **{"isolation.level": "read_committed"})
        try:
            consumer.assign([ck.TopicPartition("tx", p, 0) for p in range(2)])
            seen: list[bytes] = []
            _poll_until_values(consumer, seen, 6)
        finally:
            consumer.close()
        assert sorted(seen) == sorted([b"committed-%d" % i for i in range(5)]
                                      + [b"committed-last"])
        assert cluster.errors == []


def _poll_until_values(consumer: Any, seen: list[bytes], count: int) -> None:
    deadline = time.monotonic() + 30
    idle_after_count = 0
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is None:
            if len(seen) >= count:
                idle_after_count += 1
                if idle_after_count >= 5:  # nothing more arrives: aborted records stay hidden
                    return
            continue
        assert msg.error() is None, msg.error()
        seen.append(msg.value())
    raise AssertionError(f"only {len(seen)} of {count} records arrived")
