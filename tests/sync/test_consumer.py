"""KafkaConsumer against the embedded broker: round trips, the no-hop poll, listeners on
the polling thread, a group of two consumers in threads."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from tests.sync.producing import Produce

from streamclient.abc import ConsumerRebalanceListener
from streamclient.broker.cluster import BlockingEmbeddedCluster
from streamclient.errors import ConsumerStoppedError, IllegalStateError
from streamclient.protocol.messages.offset_for_leader_epoch import OffsetForLeaderEpochRequest
from streamclient.structs import TopicPartition
from streamclient.sync import KafkaConsumer
from streamclient.sync.portal import get_loop_thread

TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)


def poll_until(consumer: KafkaConsumer, count: int, timeout: float = 20) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {len(got)} of {count} records arrived"
        for batch in consumer.poll(timeout_ms=500).values():
            got.extend(batch)
    return got


@pytest.mark.kafka_cluster(partitions=2)
def test_group_round_trip_commit_and_resume(
    kafka_cluster_sync: BlockingEmbeddedCluster, produce: Produce
) -> None:
    bootstrap = kafka_cluster_sync.bootstrap_servers
    produce("t", 0, 30)
    produce("t", 1, 20)
    options = dict(bootstrap_servers=bootstrap, group_id="g", auto_offset_reset="earliest",
                   enable_auto_commit=False)
    with KafkaConsumer("t", **options) as consumer:
        assert consumer.assignment() == {TP0, TP1}
        records = poll_until(consumer, 50)
        assert len(records) == 50
        by_partition = {tp: [r.offset for r in records if r.partition == tp.partition]
                        for tp in (TP0, TP1)}
        assert by_partition == {TP0: list(range(30)), TP1: list(range(20))}
        assert consumer.position(TP0) == 30
        consumer.commit()
        assert consumer.committed(TP0) == 30
        assert consumer.committed(TP1) == 20
    with pytest.raises(ConsumerStoppedError):
        consumer.poll()

    produce("t", 1, 5)
    with KafkaConsumer("t", **options) as again:
        rest = poll_until(again, 5)
        assert [(r.partition, r.offset, r.value) for r in rest] == [
            (1, 20 + i, b"v%d" % i) for i in range(5)
        ]


def test_poll_drains_buffered_records_without_a_hop(
    kafka_cluster_sync: BlockingEmbeddedCluster, produce: Produce
) -> None:
    produce("t", 0, 100)
    loop = get_loop_thread()
    with KafkaConsumer(bootstrap_servers=kafka_cluster_sync.bootstrap_servers,
                       auto_offset_reset="earliest") as consumer:
        consumer.assign([TP0])
        first = consumer.poll(timeout_ms=10_000, max_records=1)
        assert [r.offset for r in first[TP0]] == [0]
        # the whole partition arrived in one fetch; the rest is buffered
        hops = loop.hops
        offsets = []
        for _ in range(99):
            offsets.extend(r.offset for r in consumer.poll(max_records=1)[TP0])
        assert consumer.poll(timeout_ms=0) == {}
        assert loop.hops == hops
        assert offsets == list(range(1, 100))
        assert consumer.position(TP0) == 100
        assert loop.hops == hops + 1  # position() is one


def test_iteration_stops_after_consumer_timeout(
    kafka_cluster_sync: BlockingEmbeddedCluster, produce: Produce
) -> None:
    produce("t", 0, 7)
    consumer = KafkaConsumer(bootstrap_servers=kafka_cluster_sync.bootstrap_servers,
                             auto_offset_reset="earliest", consumer_timeout_ms=300)
    with consumer:
        consumer.assign([TP0])
        assert [r.value for r in consumer] == [b"v%d" % i for i in range(7)]
        produce("t", 0, 2)
        assert [r.offset for r in consumer] == [7, 8]


def test_seek_pause_resume(
    kafka_cluster_sync: BlockingEmbeddedCluster, produce: Produce
) -> None:
    produce("t", 0, 10)
    with KafkaConsumer(bootstrap_servers=kafka_cluster_sync.bootstrap_servers,
                       auto_offset_reset="earliest") as consumer:
        consumer.assign([TP0])
        assert len(poll_until(consumer, 10)) == 10
        consumer.seek(TP0, 5)
        assert [r.offset for r in poll_until(consumer, 5)] == [5, 6, 7, 8, 9]
        # with the epoch of the record before it, the position is validated first (KIP-320)
        validations = kafka_cluster_sync.faults.observe(OffsetForLeaderEpochRequest)
        consumer.seek(TP0, 7, leader_epoch=0)
        assert [r.offset for r in poll_until(consumer, 3)] == [7, 8, 9]
        assert len(validations.requests) == 1
        consumer.pause(TP0)
        assert consumer.paused() == {TP0}
        produce("t", 0, 3)
        assert consumer.poll(timeout_ms=300) == {}
        consumer.resume(TP0)
        assert [r.value for r in poll_until(consumer, 3)] == [b"v0", b"v1", b"v2"]
        assert consumer.position(TP0) == 13
        assert consumer.end_offsets([TP0]) == {TP0: 13}
        assert consumer.seek_to_beginning(TP0)
        assert consumer.position(TP0) == 0


def test_blocking_call_from_the_loop_thread_raises(
    kafka_cluster_sync: BlockingEmbeddedCluster,
) -> None:
    loop = get_loop_thread()
    with KafkaConsumer(bootstrap_servers=kafka_cluster_sync.bootstrap_servers) as consumer:
        consumer.assign([TP0])
        with pytest.raises(IllegalStateError, match="own event loop thread"):
            loop.call(consumer.assignment)
        with pytest.raises(IllegalStateError, match="own event loop thread"):
            loop.call(consumer.close)
        # the consumer still works from an ordinary thread
        assert consumer.assignment() == {TP0}


class _Recorder(ConsumerRebalanceListener):
    """Commits on revocation (the classic pattern) and records where callbacks ran."""

    def __init__(self) -> None:
        self.consumer: KafkaConsumer | None = None
        self.calls: list[tuple[str, int, frozenset[TopicPartition]]] = []
        self.assigned: frozenset[TopicPartition] = frozenset()

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.calls.append(("revoked", threading.get_ident(), frozenset(revoked)))
        assert self.consumer is not None
        if revoked:
            self.consumer.commit()  # a blocking call from inside the callback

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.calls.append(("assigned", threading.get_ident(), frozenset(assigned)))
        self.assigned = frozenset(assigned)


@pytest.mark.kafka_cluster(partitions=4)
def test_group_of_two_threads_listeners_on_the_polling_thread(
    kafka_cluster_sync: BlockingEmbeddedCluster, produce: Produce
) -> None:
    bootstrap = kafka_cluster_sync.bootstrap_servers
    for p in range(4):
        produce("t", p, 10)
    stop = threading.Event()
    consumed: dict[str, list[tuple[int, int]]] = {"a": [], "b": []}
    listeners = {"a": _Recorder(), "b": _Recorder()}
    threads: dict[str, int] = {}
    errors: list[BaseException] = []

    def member(name: str) -> None:
        try:
            threads[name] = threading.get_ident()
            with KafkaConsumer(bootstrap_servers=bootstrap, group_id="g2",
                               auto_offset_reset="earliest", enable_auto_commit=False,
                               heartbeat_interval_ms=100) as consumer:
                listeners[name].consumer = consumer
                consumer.subscribe(["t"], listener=listeners[name])
                while not stop.is_set():
                    for tp, batch in consumer.poll(timeout_ms=100).items():
                        consumed[name].extend((tp.partition, r.offset) for r in batch)
                consumer.commit()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    a = threading.Thread(target=member, args=("a",))
    a.start()
    deadline = time.monotonic() + 30
    while len(consumed["a"]) < 40:
        assert time.monotonic() < deadline and not errors, errors
        time.sleep(0.02)
    b = threading.Thread(target=member, args=("b",))
    b.start()
    while not (listeners["a"].assigned and listeners["b"].assigned
               and len(listeners["a"].assigned) + len(listeners["b"].assigned) == 4):
        assert time.monotonic() < deadline and not errors, errors
        time.sleep(0.02)
    for p in range(4):
        produce("t", p, 10)
    while len(consumed["a"]) + len(consumed["b"]) < 80:
        assert time.monotonic() < deadline and not errors, errors
        time.sleep(0.02)
    stop.set()
    a.join(20)
    b.join(20)
    assert not errors, errors

    every = consumed["a"] + consumed["b"]
    assert sorted(every) == sorted((p, o) for p in range(4) for o in range(20))
    assert listeners["a"].assigned.isdisjoint(listeners["b"].assigned)
    assert consumed["b"], "the second member consumed nothing"
    for name in ("a", "b"):
        calls = listeners[name].calls
        assert any(kind == "assigned" for kind, _, _ in calls)
        assert {ident for _, ident, _ in calls} == {threads[name]}
    # a's whole first assignment was revoked when b joined (eager protocol) or part of it
    assert any(kind == "revoked" and parts for kind, _, parts in listeners["a"].calls)


def test_commit_async_callback_runs_in_poll(
    kafka_cluster_sync: BlockingEmbeddedCluster, produce: Produce
) -> None:
    produce("t", 0, 3)
    calls: list[tuple[object, object, int]] = []
    with KafkaConsumer("t", bootstrap_servers=kafka_cluster_sync.bootstrap_servers,
                       group_id="ga", auto_offset_reset="earliest",
                       enable_auto_commit=False) as consumer:
        assert len(poll_until(consumer, 3)) == 3
        future = consumer.commit_async(
            {TP0: 2}, callback=lambda offsets, error: calls.append(
                (offsets, error, threading.get_ident())))
        assert future.result(10) is None
        assert calls == []  # done on the loop; the callback waits for this thread
        consumer.poll()
        assert calls == [({TP0: 2}, None, threading.get_ident())]
        assert consumer.committed(TP0) == 2
        assert consumer.seek_to_committed(TP0) == {TP0: 2}
        assert [r.offset for r in poll_until(consumer, 1)] == [2]
        consumer.unsubscribe()
        assert consumer.assignment() == set()
