"""AIOKafkaConsumer next to librdkafka (confluent-kafka) on the embedded broker, asyncio
and trio: read_committed over transactions librdkafka committed and aborted, and one
consumer group shared by a streamclient and a confluent-kafka consumer
(cooperative-sticky).  confluent-kafka blocks, so it runs in worker threads."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import anyio.to_thread
import pytest

from streamclient import AIOKafkaConsumer, TopicPartition
from streamclient.broker import EmbeddedCluster
from streamclient.consumer.assignors import CooperativeStickyAssignor

pytestmark = pytest.mark.anyio

ck = pytest.importorskip("confluent_kafka")

BOUND_S = 45


def _transactions(bootstrap: str) -> list[bytes]:
    """Commit, abort, commit with librdkafka; returns the committed values."""
    producer = ck.Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": "tx-interop",
        "transaction.timeout.ms": 30_000,
    })
    committed: list[bytes] = []
    producer.init_transactions(15)
    producer.begin_transaction()
    for i in range(6):
        value = b"committed-%d" % i
        producer.produce("tx", value=value, partition=i % 2)
        committed.append(value)
    producer.commit_transaction(15)
    producer.begin_transaction()
    for i in range(6):
        producer.produce("tx", value=b"aborted-%d" % i, partition=i % 2)
    producer.flush(15)
    producer.abort_transaction(15)
    producer.begin_transaction()
    producer.produce("tx", value=b"committed-last", partition=0)
    producer.commit_transaction(15)
    return [*committed, b"committed-last"]


async def _read_to_end(cluster: EmbeddedCluster, isolation_level: str) -> list[bytes]:
    tps = [TopicPartition("tx", 0), TopicPartition("tx", 1)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=cluster.bootstrap_servers,
        isolation_level=isolation_level,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        request_timeout_ms=5_000,
    )
    consumer.assign(tps)
    values: list[bytes] = []
    async with consumer:
        ends = await consumer.end_offsets(tps)
        with anyio.fail_after(BOUND_S):
            while True:
                positions = {tp: await consumer.position(tp) for tp in tps}
                if all(positions[tp] >= ends[tp] for tp in tps):
                    break
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    values.extend(r.value for r in records)
        if isolation_level == "read_committed":
            assert all(consumer.last_stable_offset(tp) == ends[tp] for tp in tps)
    return values


@pytest.mark.kafka_cluster(partitions=2)
async def test_read_committed_over_librdkafka_transactions(
    kafka_cluster: EmbeddedCluster,
) -> None:
    kafka_cluster.state.create_topic("tx", 2)
    committed = await anyio.to_thread.run_sync(_transactions, kafka_cluster.bootstrap_servers)
    read = await _read_to_end(kafka_cluster, "read_committed")
    assert sorted(read) == sorted(committed)
    everything = await _read_to_end(kafka_cluster, "read_uncommitted")
    assert sorted(v for v in everything if v.startswith(b"aborted")) == sorted(
        b"aborted-%d" % i for i in range(6)
    )


class _ConfluentMember:
    """A confluent-kafka consumer polling in a worker thread until told to stop."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.consumer = ck.Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": 6_000,
            "heartbeat.interval.ms": 300,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 100,
        })
        self.consumer.subscribe([topic])
        self.values: list[str] = []
        self.assignment: set[int] = set()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        deadline = time.monotonic() + BOUND_S
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                msg = self.consumer.poll(0.1)
                self.assignment = {tp.partition for tp in self.consumer.assignment()}
                if msg is None:
                    continue
                if msg.error() is not None:
                    raise AssertionError(msg.error())
                self.values.append(msg.value().decode())
        except BaseException as exc:
            self.error = exc
        finally:
            self.consumer.close()


def _produce(bootstrap: str, topic: str, partitions: int, start: int, per: int) -> set[str]:
    producer = ck.Producer({"bootstrap.servers": bootstrap})
    values = set()
    for p in range(partitions):
        for n in range(start, start + per):
            value = f"{p}-{n}"
            producer.produce(topic, value=value.encode(), partition=p)
            values.add(value)
    assert producer.flush(15) == 0
    return values


@pytest.mark.kafka_cluster(partitions=6, group_min_session_timeout_ms=500)
async def test_group_shared_with_a_confluent_consumer(kafka_cluster: EmbeddedCluster) -> None:
    topic, group, parts = "mixed", "g-mixed", 6
    bootstrap = kafka_cluster.bootstrap_servers
    kafka_cluster.state.create_topic(topic, parts)
    produced = await anyio.to_thread.run_sync(_produce, bootstrap, topic, parts, 0, 30)
    ours = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        partition_assignment_strategy=[CooperativeStickyAssignor],
        session_timeout_ms=6_000,
        heartbeat_interval_ms=300,
        auto_offset_reset="earliest",
        auto_commit_interval_ms=100,
        fetch_max_wait_ms=100,
        request_timeout_ms=10_000,
    )
    ours_values: list[str] = []
    ours_had: set[int] = set()
    theirs = _ConfluentMember(bootstrap, topic, group)

    def seen() -> set[str]:
        return set(ours_values) | set(theirs.values)

    async def poll_ours_until(predicate: Any) -> None:
        with anyio.fail_after(BOUND_S):
            while not predicate():
                for records in (await ours.getmany(timeout_ms=50)).values():
                    ours_values.extend(r.value.decode() for r in records)
                ours_had.update(tp.partition for tp in ours.assignment())
                assert theirs.error is None, theirs.error

    async with ours, anyio.create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, theirs.run)
        # both members hold partitions, together all six, none twice
        await poll_ours_until(
            lambda: len(theirs.assignment) > 0
            and len(ours.assignment()) > 0
            and len(theirs.assignment) + len(ours.assignment()) == parts
            and {tp.partition for tp in ours.assignment()} | theirs.assignment
            == set(range(parts))
        )
        produced |= await anyio.to_thread.run_sync(_produce, bootstrap, topic, parts, 30, 30)
        await poll_ours_until(lambda: produced <= seen())
        theirs.stop.set()
    assert theirs.error is None
    assert ours_had and theirs.values
    assert seen() == produced
