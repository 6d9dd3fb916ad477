"""Issue 3 acceptance: confluent-kafka's idempotent producer survives injected faults.

- NOT_LEADER_OR_FOLLOWER once on a Produce: the request has no effect, the client
  refreshes its metadata and retries.
- The connection is dropped after a Produce was handled: the records are in the log but
  the response is lost, so the client retries the same batch (same producer id and
  sequence) and the broker's sequence check must answer it without appending it again.

Either way every record must be in the log exactly once, in order per partition.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from streamclient.broker import BlockingEmbeddedCluster
from streamclient.protocol.messages.produce import ProduceRequest
from streamclient.protocol.records import read_batch_header

pytestmark = pytest.mark.interop

TOPIC = "faulty"
PARTITIONS = 3
ROUNDS = 10
PER_ROUND = 300
DEADLINE_S = 30.0
NOT_LEADER_OR_FOLLOWER = 6


@pytest.fixture
def cluster() -> Iterator[BlockingEmbeddedCluster]:
    with BlockingEmbeddedCluster(3, group_initial_rebalance_delay_ms=0,
                                 offsets_topic_num_partitions=3,
                                 transaction_state_log_num_partitions=3) as running:
        running.call(lambda: running.state.create_topic(
            TOPIC, PARTITIONS, 3, {"min.insync.replicas": "2"}))
        yield running
    assert running.errors == []


Batch = tuple[int, int, int, int]


def batches_of(request: ProduceRequest) -> list[Batch]:
    """(partition, producer id, base sequence, record count) of each batch for TOPIC."""
    batches = []
    for data in request.topic_data:
        for part in data.partition_data:
            if data.name == TOPIC and part.records:
                header = read_batch_header(part.records)
                batches.append((part.index, header.producer_id, header.base_sequence,
                                header.record_count))
    return batches


class FaultTarget:
    """A fault predicate matching Produce requests for TOPIC; keeps the one it took.

    A ``times=1`` rule stops consulting its predicate once it fired, so the first
    request the predicate accepts is the one the fault hit.
    """

    def __init__(self) -> None:
        self.taken: list[Batch] | None = None

    def __call__(self, request: ProduceRequest, _version: int) -> bool:
        batches = batches_of(request)
        if batches and self.taken is None:
            self.taken = batches
        return bool(batches)


def assert_sent_again(observer: Any, target: FaultTarget) -> None:
    """Every batch of the request the fault hit was sent (at least) once more."""
    assert target.taken
    sent = [b for seen in observer.requests for b in batches_of(seen.request)]
    for batch in target.taken:
        assert sent.count(batch) >= 2, (batch, sent)


def produce_all(cluster: BlockingEmbeddedCluster, arm_fault: Any) -> list[Any]:
    """Produce ROUNDS rounds of records; ``arm_fault()`` runs after the first round is in."""
    import confluent_kafka as ck

    producer = ck.Producer({
        "bootstrap.servers": cluster.bootstrap_servers, "enable.idempotence": True,
        "acks": "all", "linger.ms": 5, "retry.backoff.ms": 50,
        "topic.metadata.refresh.interval.ms": 1000})
    failures: list[Any] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(err)

    for round_ in range(ROUNDS):
        for i in range(round_ * PER_ROUND, (round_ + 1) * PER_ROUND):
            producer.produce(TOPIC, value=b"%d" % i, partition=i % PARTITIONS,
                             on_delivery=on_delivery)
        producer.poll(0)
        if round_ == 0:
            # with the first records acknowledged the producer id and sequences are in use
            assert producer.flush(DEADLINE_S) == 0
            arm_fault()
    assert producer.flush(DEADLINE_S) == 0
    return failures


def assert_each_record_once(cluster: BlockingEmbeddedCluster) -> None:
    import confluent_kafka as ck

    total = ROUNDS * PER_ROUND
    ends = cluster.call(lambda: [cluster.state.partition_log(TOPIC, p).high_watermark
                                 for p in range(PARTITIONS)])
    assert sum(ends) == total  # nothing appended twice, nothing missing

    consumer = ck.Consumer({"bootstrap.servers": cluster.bootstrap_servers,
                            "group.id": "unused", "enable.auto.commit": False})
    partitions = [ck.TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)]
    values: dict[int, list[int]] = {p: [] for p in range(PARTITIONS)}
    try:
        consumer.assign(partitions)
        deadline = time.monotonic() + DEADLINE_S
        while [tp.offset for tp in consumer.position(partitions)] != ends:
            assert time.monotonic() < deadline, "the log could not be read to its end"
            for msg in consumer.consume(1000, 0.2):
                assert msg.error() is None, msg.error()
                values[msg.partition()].append(int(msg.value()))
    finally:
        consumer.close()
    assert values == {p: list(range(p, total, PARTITIONS)) for p in range(PARTITIONS)}


def test_not_leader_once_on_produce(cluster: BlockingEmbeddedCluster) -> None:
    rules: list[Any] = []
    target = FaultTarget()
    observer = cluster.faults.observe(ProduceRequest)

    def arm() -> None:
        rules.append(cluster.faults.control(
            ProduceRequest, error=NOT_LEADER_OR_FOLLOWER, times=1, when=target))

    assert produce_all(cluster, arm) == []
    assert rules[0].hits == 1
    # the refused batches (no effect) were sent again with their sequence numbers
    assert_sent_again(observer, target)
    assert_each_record_once(cluster)


def test_response_lost_after_produce_took_effect(cluster: BlockingEmbeddedCluster) -> None:
    rules: list[Any] = []
    target = FaultTarget()
    observer = cluster.faults.observe(ProduceRequest)

    def arm() -> None:
        rules.append(cluster.faults.control(
            ProduceRequest, drop="after", times=1, when=target))

    assert produce_all(cluster, arm) == []
    assert rules[0].hits == 1
    # the dropped request's batches were appended, then sent again: the broker must
    # recognise them as duplicates by their sequence numbers
    assert_sent_again(observer, target)
    assert_each_record_once(cluster)
