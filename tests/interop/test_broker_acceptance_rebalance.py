"""Issue 3 acceptance: cooperative-sticky rebalancing (confluent-kafka) on a 3-node cluster.

Two consumers share a 6-partition topic (3 each); a third joins (2 each) and leaves (3
each again) while a producer keeps writing.  Every record produced is consumed.  Each
consumer commits synchronously right after processing what it polled (the coordinator
may refuse a commit mid-rebalance; it is retried with the next), so a record may be
delivered twice only if no commit covered it yet when it was delivered again — the test
checks exactly that for every repeat — and in the end the group's commits reach the log
ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from streamclient.broker import BlockingEmbeddedCluster

pytestmark = pytest.mark.interop

TOPIC = "shared"
GROUP = "cooperative"
PARTITIONS = 6
PHASE_DEADLINE_S = 30.0
RECORDS_PER_ROUND = 6
# every phase keeps producing for at least this many rounds after it started
MIN_ROUNDS_PER_PHASE = 25


@pytest.fixture
def cluster() -> Iterator[BlockingEmbeddedCluster]:
    with BlockingEmbeddedCluster(
            3, group_initial_rebalance_delay_ms=0, offsets_topic_num_partitions=3,
            transaction_state_log_num_partitions=3) as running:
        running.call(lambda: running.state.create_topic(
            TOPIC, PARTITIONS, 3, {"min.insync.replicas": "2"}))
        yield running
    assert running.errors == []


class Ledger:
    """Every delivery and every successful commit, shared by the consumer threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (partition, offset) -> record id, and how many records each consumer processed
        self.delivered: dict[tuple[int, int], int] = {}
        self.delivered_to: dict[str, int] = {}
        self.repeats: list[tuple[int, int]] = []
        self.unexplained_repeats: list[tuple[int, int, int]] = []
        # highest offset a successful synchronous commit covered, per partition
        self.committed_upto: dict[int, int] = dict.fromkeys(range(PARTITIONS), 0)
        self.failed_commits: list[Any] = []

    def record(self, name: str, partition: int, offset: int, record_id: int) -> None:
        with self.lock:
            key = (partition, offset)
            if key in self.delivered:
                self.repeats.append(key)
                if offset < self.committed_upto[partition]:
                    self.unexplained_repeats.append(
                        (partition, offset, self.committed_upto[partition]))
            self.delivered[key] = record_id
            self.delivered_to[name] = self.delivered_to.get(name, 0) + 1

    def committed(self, next_offsets: dict[int, int]) -> None:
        with self.lock:
            for partition, offset in next_offsets.items():
                self.committed_upto[partition] = max(self.committed_upto[partition], offset)

    def processed_by(self, name: str) -> int:
        with self.lock:
            return self.delivered_to.get(name, 0)

    def ids(self) -> set[int]:
        with self.lock:
            return set(self.delivered.values())


class ConsumerThread(threading.Thread):
    """An application instance: poll, process, commit synchronously, repeat.

    Each consumer needs its own thread: a synchronous commit can wait on a coordinator
    connection that a pending JoinGroup occupies, and that join only completes once the
    other members have polled (cooperative rebalancing needs every member's poll).
    """

    def __init__(self, name: str, bootstrap: str, ledger: Ledger) -> None:
        import confluent_kafka as ck

        super().__init__(name=name, daemon=True)
        self.ck = ck
        self.ledger = ledger
        self.stopping = threading.Event()
        self.failure: BaseException | None = None
        # read by the test thread: librdkafka's assignment() is called only from this
        # thread, since confluent-kafka holds the GIL while it waits for librdkafka
        self.owned: frozenset[int] = frozenset()
        self.uncommitted: dict[int, int] = {}  # partition -> next offset to commit
        self.consumer = ck.Consumer({
            "bootstrap.servers": bootstrap, "group.id": GROUP, "client.id": name,
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
            "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self.consumer.subscribe([TOPIC])

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.poll_once()
        except BaseException as exc:  # reported by the test thread
            self.failure = exc
        finally:
            self.consumer.close()  # leaves the group; what it processed is committed

    def poll_once(self) -> None:
        batch = self.consumer.consume(500, 0.05)
        self.owned = frozenset(tp.partition for tp in self.consumer.assignment())
        for msg in batch:
            assert msg.error() is None, msg.error()
            self.ledger.record(self.name, msg.partition(), msg.offset(), int(msg.value()))
            self.uncommitted[msg.partition()] = msg.offset() + 1
        # a commit that failed is retried with the next one, but only for partitions this
        # member still owns: the new owner's commits must not be overwritten with older ones
        for partition in set(self.uncommitted) - self.owned:
            del self.uncommitted[partition]
        if not self.uncommitted:
            return
        offsets = [self.ck.TopicPartition(TOPIC, p, o) for p, o in self.uncommitted.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except self.ck.KafkaException as exc:
            # until a commit covers them, these records may legitimately be delivered again
            with self.ledger.lock:
                self.ledger.failed_commits.append(exc.args[0])
            return
        self.ledger.committed(self.uncommitted)
        self.uncommitted.clear()

    def assignment(self) -> frozenset[int]:
        return self.owned

    def stop(self) -> None:
        self.stopping.set()
        self.join(PHASE_DEADLINE_S)
        assert not self.is_alive(), f"{self.name} did not stop"
        if self.failure is not None:
            raise self.failure


class Workload:
    """A producer writing numbered records while consumer threads come and go."""

    def __init__(self, bootstrap: str) -> None:
        import confluent_kafka as ck

        self.bootstrap = bootstrap
        self.producer = ck.Producer({"bootstrap.servers": bootstrap,
                                     "enable.idempotence": True, "acks": "all",
                                     "linger.ms": 5})
        self.produced = 0
        self.ledger = Ledger()
        self.consumers: list[ConsumerThread] = []

    def add_consumer(self, name: str) -> ConsumerThread:
        consumer = ConsumerThread(name, self.bootstrap, self.ledger)
        consumer.start()
        self.consumers.append(consumer)
        return consumer

    def remove_consumer(self, consumer: ConsumerThread) -> None:
        self.consumers.remove(consumer)
        consumer.stop()

    def produce_round(self) -> None:
        for _ in range(RECORDS_PER_ROUND):
            record_id = self.produced
            self.producer.produce(TOPIC, value=b"%d" % record_id,
                                  partition=record_id % PARTITIONS)
            self.produced += 1
        self.producer.poll(0.02)

    def assignments(self) -> list[frozenset[int]]:
        return [c.assignment() for c in self.consumers]

    def run_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + PHASE_DEADLINE_S
        rounds = 0
        while rounds < MIN_ROUNDS_PER_PHASE or not condition():
            rounds += 1
            assert time.monotonic() < deadline, (
                f"timed out waiting for {what}: assignments {self.assignments()}")
            for consumer in self.consumers:
                if consumer.failure is not None:
                    raise consumer.failure
            self.produce_round()

    def balanced(self, size: int) -> bool:
        owned = self.assignments()
        return (all(len(p) == size for p in owned)
                and sorted(p for ps in owned for p in ps) == list(range(PARTITIONS)))

    def close(self) -> None:
        for consumer in self.consumers:
            consumer.stopping.set()
        for consumer in self.consumers:
            consumer.join(PHASE_DEADLINE_S)
        self.consumers.clear()
        self.producer.flush(10)


def test_cooperative_sticky_join_and_leave_loses_nothing(
        cluster: BlockingEmbeddedCluster) -> None:
    import confluent_kafka as ck

    work = Workload(cluster.bootstrap_servers)
    ledger = work.ledger
    try:
        first, second = work.add_consumer("first"), work.add_consumer("second")
        work.run_until(lambda: work.balanced(3), "two consumers with 3 partitions each")
        before_join = work.assignments()

        third = work.add_consumer("third")
        work.run_until(lambda: work.balanced(2) and ledger.processed_by("third") > 0,
                       "three consumers with 2 partitions each")
        # sticky: the two members kept partitions they owned and only gave some up
        assert first.assignment() <= before_join[0]
        assert second.assignment() <= before_join[1]
        kept = [first.assignment(), second.assignment()]

        work.remove_consumer(third)
        work.run_until(lambda: work.balanced(3), "two consumers with 3 partitions again")
        assert first.assignment() >= kept[0]
        assert second.assignment() >= kept[1]

        # stop producing, then let the consumers drain everything produced throughout
        assert work.producer.flush(PHASE_DEADLINE_S) == 0
        deadline = time.monotonic() + PHASE_DEADLINE_S
        while len(ledger.ids()) < work.produced:
            assert time.monotonic() < deadline, "not every record arrived"
            time.sleep(0.05)
        ends = cluster.call(lambda: [cluster.state.partition_log(TOPIC, p).high_watermark
                                     for p in range(PARTITIONS)])
        # a commit refused during the last rebalance is retried by its consumer's next poll
        while [ledger.committed_upto[p] for p in range(PARTITIONS)] != ends:
            assert time.monotonic() < deadline, (ledger.committed_upto, ends)
            time.sleep(0.05)
        for consumer in (first, second):
            work.remove_consumer(consumer)
    finally:
        work.close()

    assert ledger.ids() == set(range(work.produced))
    assert len(ledger.delivered) == work.produced  # one record per (partition, offset)
    assert ledger.unexplained_repeats == []
    # records were produced in every phase, and the third consumer did its share
    assert work.produced >= 3 * MIN_ROUNDS_PER_PHASE * RECORDS_PER_ROUND
    assert ledger.processed_by("third") > 0
    assert sum(ends) == work.produced
    # and the coordinator agrees: OffsetFetch returns the log ends
    checker = ck.Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": GROUP,
                           "enable.auto.commit": False})
    try:
        committed = checker.committed(
            [ck.TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=10)
    finally:
        checker.close()
    assert [tp.offset for tp in committed] == ends
