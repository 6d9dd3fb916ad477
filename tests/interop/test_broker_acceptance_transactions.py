"""Issue 3 acceptance: transactions through a 3-node embedded cluster, clients unchanged.

A transactional producer (confluent-kafka or kafka-python) commits and aborts in turn.
Readers consume until their position reaches the log end (positions pass control records
and aborted batches), so "nothing else arrives" needs no idle wait.  ``read_committed``
must see exactly the committed records, ``read_uncommitted`` all of them.

Consume-transform-produce (confluent-kafka, kafka-python, aiokafka): the output topic
holds exactly the transformed input, even across an aborted attempt, and the input
group's committed offsets are the input's ends.  aiokafka's test runs on asyncio with the
cluster on the same loop; the others use a ``BlockingEmbeddedCluster``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from streamclient.broker import BlockingEmbeddedCluster

pytestmark = pytest.mark.interop

PARTITIONS = 3
PER_TXN = 30
DEADLINE_S = 30.0
TXN_TIMEOUT_S = 15

# (value, partition) of each transaction, in order, and whether it commits
TRANSACTIONS: list[tuple[list[tuple[bytes, int]], bool]] = [
    ([(b"c1-%d" % i, i % PARTITIONS) for i in range(PER_TXN)], True),
    ([(b"a1-%d" % i, i % PARTITIONS) for i in range(PER_TXN)], False),
    ([(b"c2-%d" % i, i % PARTITIONS) for i in range(PER_TXN)], True),
    ([(b"a2-%d" % i, i % PARTITIONS) for i in range(PER_TXN)], False),
    ([(b"end-%d" % p, p) for p in range(PARTITIONS)], True),
]


def expected(*, committed_only: bool) -> dict[int, list[bytes]]:
    by_partition: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    for records, commits in TRANSACTIONS:
        if commits or not committed_only:
            for value, partition in records:
                by_partition[partition].append(value)
    return by_partition


@pytest.fixture
def cluster() -> Iterator[BlockingEmbeddedCluster]:
    with BlockingEmbeddedCluster(
            3, group_initial_rebalance_delay_ms=0, offsets_topic_num_partitions=3,
            transaction_state_log_num_partitions=3) as running:
        yield running
    assert running.errors == []


def create_topic(cluster: BlockingEmbeddedCluster, name: str, partitions: int) -> None:
    cluster.call(lambda: cluster.state.create_topic(
        name, partitions, 3, {"min.insync.replicas": "2"}))


def produce_with_confluent_kafka(bootstrap: str, topic: str) -> None:
    import confluent_kafka as ck

    producer = ck.Producer({"bootstrap.servers": bootstrap, "transactional.id": "ck-txn",
                            "linger.ms": 5})
    producer.init_transactions(TXN_TIMEOUT_S)
    for records, commits in TRANSACTIONS:
        producer.begin_transaction()
        for value, partition in records:
            producer.produce(topic, value=value, partition=partition)
        if commits:
            producer.commit_transaction(TXN_TIMEOUT_S)
        else:
            # the records must reach the log before the abort, or there is nothing to hide
            assert producer.flush(TXN_TIMEOUT_S) == 0
            producer.abort_transaction(TXN_TIMEOUT_S)


def produce_with_kafka_python(bootstrap: str, topic: str) -> None:
    import kafka

    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kp-txn",
                                   linger_ms=5)
    try:
        producer.init_transactions()
        for records, commits in TRANSACTIONS:
            producer.begin_transaction()
            futures = [producer.send(topic, value=value, partition=partition)
                       for value, partition in records]
            producer.flush(TXN_TIMEOUT_S)
            for future in futures:
                assert future.succeeded(), future.exception
            if commits:
                producer.commit_transaction()
            else:
                producer.abort_transaction()
    finally:
        producer.close(timeout=10)


def read_with_confluent_kafka(bootstrap: str, topic: str, isolation: str,
                              ends: list[int]) -> dict[int, list[bytes]]:
    """Every record of ``topic`` the consumer delivers until its positions reach ``ends``."""
    import confluent_kafka as ck

    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                            "enable.auto.commit": False, "isolation.level": isolation})
    seen: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    partitions = [ck.TopicPartition(topic, p, 0) for p in range(PARTITIONS)]
    try:
        consumer.assign(partitions)
        deadline = time.monotonic() + DEADLINE_S
        # the position passes control records and aborted batches too, so reaching
        # the log end proves nothing more can arrive
        while [tp.offset for tp in consumer.position(partitions)] != ends:
            assert time.monotonic() < deadline, (consumer.position(partitions), ends)
            for msg in consumer.consume(1000, 0.2):
                assert msg.error() is None, msg.error()
                seen[msg.partition()].append(msg.value())
    finally:
        consumer.close()
    return seen


def read_with_kafka_python(bootstrap: str, topic: str, isolation: str,
                           ends: list[int]) -> dict[int, list[bytes]]:
    import kafka

    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                   enable_auto_commit=False, isolation_level=isolation)
    seen: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    partitions = [kafka.TopicPartition(topic, p) for p in range(PARTITIONS)]
    try:
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        deadline = time.monotonic() + DEADLINE_S
        while [consumer.position(tp) for tp in partitions] != ends:
            assert time.monotonic() < deadline, ([consumer.position(tp) for tp in partitions],
                                                 ends)
            for tp, records in consumer.poll(timeout_ms=200).items():
                seen[tp.partition].extend(r.value for r in records)
    finally:
        consumer.close()
    return seen


def log_ends(cluster: BlockingEmbeddedCluster, topic: str) -> list[int]:
    def ends() -> list[int]:
        logs = [cluster.state.partition_log(topic, p) for p in range(PARTITIONS)]
        return [log.high_watermark for log in logs if log is not None]
    return cluster.call(ends)


PRODUCERS = {"confluent_kafka": produce_with_confluent_kafka,
             "kafka_python": produce_with_kafka_python}
READERS = {"confluent_kafka": read_with_confluent_kafka,
           "kafka_python": read_with_kafka_python}


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("producer", sorted(PRODUCERS))
def test_read_committed_sees_only_committed_records(
        cluster: BlockingEmbeddedCluster, producer: str, reader: str) -> None:
    create_topic(cluster, "txn", PARTITIONS)
    PRODUCERS[producer](cluster.bootstrap_servers, "txn")

    ends = log_ends(cluster, "txn")
    committed = READERS[reader](cluster.bootstrap_servers, "txn", "read_committed", ends)
    assert committed == expected(committed_only=True)
    everything = READERS[reader](cluster.bootstrap_servers, "txn", "read_uncommitted", ends)
    assert everything == expected(committed_only=False)

    def log_state() -> list[tuple[int, int, int]]:
        logs = [cluster.state.partition_log("txn", p) for p in range(PARTITIONS)]
        return [(log.high_watermark, log.last_stable_offset,
                 len(log.aborted_transactions(0, log.high_watermark)))
                for log in logs if log is not None]
    # every transaction left one marker per partition; the two aborts are indexed
    markers = len(TRANSACTIONS)
    assert cluster.call(log_state) == [
        (len(values) + markers, len(values) + markers, 2)
        for values in expected(committed_only=False).values()]


INPUT_RECORDS = 300


def fill_input(cluster: BlockingEmbeddedCluster) -> None:
    import confluent_kafka as ck

    create_topic(cluster, "ctp-in", PARTITIONS)
    create_topic(cluster, "ctp-out", PARTITIONS)
    source = ck.Producer({"bootstrap.servers": cluster.bootstrap_servers,
                          "enable.idempotence": True, "linger.ms": 5})
    for i in range(INPUT_RECORDS):
        source.produce("ctp-in", key=b"%d" % i, value=b"in-%d" % i, partition=i % PARTITIONS)
    assert source.flush(DEADLINE_S) == 0


def assert_transformed_exactly_once(cluster: BlockingEmbeddedCluster, group: str) -> None:
    """The output is the transformed input, once; the group committed the input's ends."""
    import confluent_kafka as ck

    bootstrap = cluster.bootstrap_servers
    output = read_with_confluent_kafka(bootstrap, "ctp-out", "read_committed",
                                       log_ends(cluster, "ctp-out"))
    assert output == {p: [b"out-%d" % i for i in range(p, INPUT_RECORDS, PARTITIONS)]
                      for p in range(PARTITIONS)}
    checker = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                           "enable.auto.commit": False})
    try:
        committed = checker.committed(
            [ck.TopicPartition("ctp-in", p) for p in range(PARTITIONS)], timeout=10)
    finally:
        checker.close()
    input_ends = log_ends(cluster, "ctp-in")
    assert [tp.offset for tp in committed] == input_ends
    assert sum(input_ends) == INPUT_RECORDS


def test_confluent_kafka_consume_transform_produce(cluster: BlockingEmbeddedCluster) -> None:
    import confluent_kafka as ck

    fill_input(cluster)
    bootstrap = cluster.bootstrap_servers
    consumer = ck.Consumer({
        "bootstrap.servers": bootstrap, "group.id": "ctp", "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "isolation.level": "read_committed"})
    producer = ck.Producer({"bootstrap.servers": bootstrap, "transactional.id": "ctp-app",
                            "linger.ms": 5})
    producer.init_transactions(TXN_TIMEOUT_S)
    processed = 0
    aborted_once = False
    try:
        consumer.subscribe(["ctp-in"])
        deadline = time.monotonic() + DEADLINE_S
        while processed < INPUT_RECORDS and time.monotonic() < deadline:
            batch = consumer.consume(50, 0.5)
            if not batch:
                continue
            producer.begin_transaction()
            for msg in batch:
                assert msg.error() is None, msg.error()
                producer.produce("ctp-out", key=msg.key(), value=b"out-" + msg.value()[3:],
                                 partition=msg.partition())
            if not aborted_once:
                # the first attempt fails: its output must never be visible, and the
                # consumer rewinds to the group's committed offsets to redo the work
                aborted_once = True
                assert producer.flush(TXN_TIMEOUT_S) == 0
                producer.abort_transaction(TXN_TIMEOUT_S)
                rewind(consumer)
                continue
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()), consumer.consumer_group_metadata(),
                TXN_TIMEOUT_S)
            producer.commit_transaction(TXN_TIMEOUT_S)
            processed += len(batch)
    finally:
        consumer.close()
    assert processed == INPUT_RECORDS
    assert_transformed_exactly_once(cluster, "ctp")


def test_kafka_python_consume_transform_produce(cluster: BlockingEmbeddedCluster) -> None:
    import kafka
    from kafka.structs import OffsetAndMetadata

    fill_input(cluster)
    bootstrap = cluster.bootstrap_servers
    consumer = kafka.KafkaConsumer(
        "ctp-in", bootstrap_servers=bootstrap, group_id="ctp-kp", session_timeout_ms=6000,
        heartbeat_interval_ms=500, auto_offset_reset="earliest", enable_auto_commit=False,
        isolation_level="read_committed", max_poll_records=50)
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, transactional_id="ctp-kp-app",
                                   linger_ms=5)
    processed = 0
    aborted_once = False
    try:
        producer.init_transactions()
        deadline = time.monotonic() + DEADLINE_S
        while processed < INPUT_RECORDS and time.monotonic() < deadline:
            records = [r for rs in consumer.poll(timeout_ms=500).values() for r in rs]
            if not records:
                continue
            producer.begin_transaction()
            for record in records:
                producer.send("ctp-out", key=record.key, value=b"out-" + record.value[3:],
                              partition=record.partition)
            if not aborted_once:
                aborted_once = True
                producer.flush(TXN_TIMEOUT_S)
                producer.abort_transaction()
                for tp in consumer.assignment():
                    offset = consumer.committed(tp)
                    if offset is None:
                        consumer.seek_to_beginning(tp)
                    else:
                        consumer.seek(tp, offset)
                continue
            offsets = {tp: OffsetAndMetadata(consumer.position(tp), "", -1)
                       for tp in consumer.assignment()}
            producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
            producer.commit_transaction()
            processed += len(records)
    finally:
        consumer.close()
        producer.close(timeout=10)
    assert processed == INPUT_RECORDS
    assert_transformed_exactly_once(cluster, "ctp-kp")


def rewind(consumer: Any) -> None:
    """Seek every assigned partition back to the group's committed offset (or the start)."""
    import confluent_kafka as ck

    committed = consumer.committed(consumer.assignment(), timeout=10)
    for tp in committed:
        offset = tp.offset if tp.offset >= 0 else ck.OFFSET_BEGINNING
        consumer.seek(ck.TopicPartition(tp.topic, tp.partition, offset))


@pytest.fixture
def anyio_backend() -> str:
    # aiokafka is built on asyncio
    return "asyncio"


@pytest.mark.anyio
async def test_aiokafka_consume_transform_produce() -> None:
    import aiokafka
    import anyio

    from streamclient.broker import EmbeddedCluster

    async with EmbeddedCluster(3, group_initial_rebalance_delay_ms=0,
                               offsets_topic_num_partitions=3,
                               transaction_state_log_num_partitions=3) as cluster:
        for name in ("ctp-in", "ctp-out"):
            cluster.state.create_topic(name, PARTITIONS, 3, {"min.insync.replicas": "2"})
        bootstrap = cluster.bootstrap_servers
        with anyio.fail_after(DEADLINE_S):
            source = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap,
                                               enable_idempotence=True)
            await source.start()
            try:
                for i in range(INPUT_RECORDS):
                    await source.send("ctp-in", b"in-%d" % i, key=b"%d" % i,
                                      partition=i % PARTITIONS)
                await source.flush()
            finally:
                await source.stop()

            consumer = aiokafka.AIOKafkaConsumer(
                "ctp-in", bootstrap_servers=bootstrap, group_id="ctp-aio",
                session_timeout_ms=6000, heartbeat_interval_ms=500,
                auto_offset_reset="earliest", enable_auto_commit=False,
                isolation_level="read_committed")
            producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap,
                                                 transactional_id="ctp-aio-app")
            await consumer.start()
            await producer.start()
            processed = 0
            aborted_once = False
            try:
                while processed < INPUT_RECORDS:
                    batches = await consumer.getmany(timeout_ms=500, max_records=50)
                    records = [r for rs in batches.values() for r in rs]
                    if not records:
                        continue
                    await producer.begin_transaction()
                    for record in records:
                        await producer.send("ctp-out", b"out-" + record.value[3:],
                                            key=record.key, partition=record.partition)
                    if not aborted_once:
                        aborted_once = True
                        await producer.abort_transaction()
                        for tp in consumer.assignment():
                            offset = await consumer.committed(tp)
                            if offset is None:
                                await consumer.seek_to_beginning(tp)
                            else:
                                consumer.seek(tp, offset)
                        continue
                    offsets = {tp: await consumer.position(tp) for tp in consumer.assignment()}
                    await producer.send_offsets_to_transaction(offsets, "ctp-aio")
                    await producer.commit_transaction()
                    processed += len(records)
            finally:
                await producer.stop()
                await consumer.stop()

            reader = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap,
                                               isolation_level="read_committed",
                                               enable_auto_commit=False)
            partitions = [aiokafka.TopicPartition("ctp-out", p) for p in range(PARTITIONS)]
            ends = [cluster.state.partition_log("ctp-out", p).high_watermark
                    for p in range(PARTITIONS)]
            output: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
            await reader.start()
            try:
                reader.assign(partitions)
                await reader.seek_to_beginning(*partitions)
                while [await reader.position(tp) for tp in partitions] != ends:
                    for tp, rs in (await reader.getmany(timeout_ms=200)).items():
                        output[tp.partition].extend(r.value for r in rs)
            finally:
                await reader.stop()
            assert output == {p: [b"out-%d" % i for i in range(p, INPUT_RECORDS, PARTITIONS)]
                              for p in range(PARTITIONS)}

            checker = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap,
                                                group_id="ctp-aio", enable_auto_commit=False)
            await checker.start()
            try:
                committed = [await checker.committed(aiokafka.TopicPartition("ctp-in", p))
                             for p in range(PARTITIONS)]
            finally:
                await checker.stop()
            assert committed == [cluster.state.partition_log("ctp-in", p).high_watermark
                                 for p in range(PARTITIONS)]
            assert sum(committed) == INPUT_RECORDS
    assert cluster.errors == []
