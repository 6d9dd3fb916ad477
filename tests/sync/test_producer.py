"""KafkaProducer: appends on the caller's thread with no hop per record, futures, flush,
back-pressure, callbacks on the application's thread, threads sending at once."""

from __future__ import annotations

import threading
import time

import pytest

from streamclient.broker.cluster import BlockingEmbeddedCluster
from streamclient.errors import (
    IllegalOperation,
    InvalidRecordError,
    KafkaTimeoutError,
    ProducerClosed,
)
from streamclient.protocol.messages.produce import ProduceRequest
from streamclient.structs import RecordMetadata, TopicPartition
from streamclient.sync import KafkaConsumer, KafkaProducer
from streamclient.sync.portal import get_loop_thread


def read_all(bootstrap: str, tp: TopicPartition, count: int) -> list[tuple[int, bytes]]:
    with KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest") as c:
        c.assign([tp])
        got: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + 20
        while len(got) < count:
            assert time.monotonic() < deadline, f"{len(got)} of {count} records"
            for batch in c.poll(timeout_ms=500).values():
                got.extend((r.offset, r.value) for r in batch)
        return got


@pytest.mark.kafka_cluster(partitions=3)
def test_many_sends_without_a_hop_per_record(kafka_cluster_sync: BlockingEmbeddedCluster) -> None:
    loop = get_loop_thread()
    with KafkaProducer(bootstrap_servers=kafka_cluster_sync.bootstrap_servers,
                       linger_ms=2) as producer:
        first = producer.send("t", b"first", partition=0).get(10)
        assert isinstance(first, RecordMetadata)
        assert (first.topic, first.partition, first.offset) == ("t", 0, 0)
        hops, wakeups = loop.hops, loop.wakeups
        futures = [producer.send("t", b"v%d" % i, key=b"k%d" % i) for i in range(3000)]
        producer.flush()
        assert loop.hops == hops, "send() or flush() waited for the loop"
        assert loop.wakeups - wakeups < len(futures) // 10, "a wakeup per record"
        assert all(f.done() and f.succeeded() for f in futures)
        metadata = [f.get() for f in futures]
    by_partition: dict[int, list[int]] = {}
    for md in metadata:
        by_partition.setdefault(md.partition, []).append(md.offset)
    for partition, offsets in by_partition.items():
        start = 1 if partition == 0 else 0
        assert offsets == list(range(start, start + len(offsets)))
    # keyed records land where the key hashes, the same for every send of that key
    assert len(by_partition) == 3
    assert [v for _, v in read_all(kafka_cluster_sync.bootstrap_servers,
                                   TopicPartition("t", 1), len(by_partition[1]))] == [
        b"v%d" % i for i, md in enumerate(metadata) if md.partition == 1]


def test_errors_surface_on_get_and_callbacks_run_on_the_callers_thread(
    kafka_cluster_sync: BlockingEmbeddedCluster,
) -> None:
    # answered late, so that the callbacks below are surely registered before it fails
    # (one added after completion runs at once, on the adding thread)
    rule = kafka_cluster_sync.faults.control(ProduceRequest, error=87, times=1, delay_ms=300)
    events: list[tuple[str, object, int]] = []
    with KafkaProducer(bootstrap_servers=kafka_cluster_sync.bootstrap_servers,
                       enable_idempotence=False) as producer:
        failed = producer.send("t", b"rejected", partition=0)
        failed.add_errback(lambda e: events.append(("errback", type(e), threading.get_ident())))
        failed.add_callback(lambda md: events.append(("callback", md, threading.get_ident())))
        with pytest.raises(InvalidRecordError):
            failed.get(10)
        assert rule.hits == 1
        assert failed.failed() and isinstance(failed.exception(), InvalidRecordError)
        assert events == []  # completed on the loop; the callbacks wait for this thread
        assert producer.poll() == 2
        assert events == [("errback", InvalidRecordError, threading.get_ident())]

        ok = producer.send("t", b"accepted", partition=0)
        done: list[int] = []
        ok.add_done_callback(lambda f: done.append(threading.get_ident()))
        ok.add_callback(lambda md: events.append(("callback", md.offset, threading.get_ident())))
        producer.flush()  # runs the callbacks due
        assert done == [threading.get_ident()]
        assert events[-1] == ("callback", ok.get().offset, threading.get_ident())
        # added after completion: runs at once
        ok.add_callback(lambda md: events.append(("late", md.offset, threading.get_ident())))
        assert events[-1][0] == "late"
    with pytest.raises(ProducerClosed):
        producer.send("t", b"after close")


def test_back_pressure_blocks_up_to_max_block_ms(
    kafka_cluster_sync: BlockingEmbeddedCluster,
) -> None:
    bootstrap = kafka_cluster_sync.bootstrap_servers
    with KafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1024, buffer_memory=2048,
                       max_block_ms=300, enable_idempotence=False) as producer:
        producer.send("t", b"warm", partition=0).get(10)
        # the broker holds every Produce answer for a while, so no memory comes back
        stall = kafka_cluster_sync.faults.control(ProduceRequest, delay_ms=1500)
        queued = [producer.send("t", b"x" * 900, partition=0) for _ in range(2)]
        started = time.monotonic()
        with pytest.raises(KafkaTimeoutError, match="allocate memory"):
            producer.send("t", b"x" * 900, partition=0)
        assert 0.25 <= time.monotonic() - started < 1.4
        stall.remove()
        # the held answers arrive, memory comes back, and sending works again
        assert [f.get(10).offset for f in queued] == [1, 2]
        assert producer.send("t", b"y", partition=0).get(10).offset == 3


def test_flush_timeout(kafka_cluster_sync: BlockingEmbeddedCluster) -> None:
    with KafkaProducer(bootstrap_servers=kafka_cluster_sync.bootstrap_servers) as producer:
        producer.send("t", b"warm", partition=0).get(10)
        stall = kafka_cluster_sync.faults.control(ProduceRequest, delay_ms=1000, times=1)
        future = producer.send("t", b"slow", partition=0)
        with pytest.raises(KafkaTimeoutError):
            producer.flush(timeout=0.1)
        with pytest.raises(KafkaTimeoutError):
            future.get(timeout=0.01)
        producer.flush(timeout=10)
        assert stall.hits == 1
        assert future.get(0).offset == 1


def test_threads_send_at_once(kafka_cluster_sync: BlockingEmbeddedCluster) -> None:
    bootstrap = kafka_cluster_sync.bootstrap_servers
    with KafkaProducer(bootstrap_servers=bootstrap, linger_ms=1) as producer:
        producer.send("t", b"warm", partition=0).get(10)
        results: dict[int, list[RecordMetadata]] = {}

        def sender(n: int) -> None:
            futures = [producer.send("t", b"%d-%d" % (n, i), partition=0) for i in range(500)]
            results[n] = [f.get(20) for f in futures]

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    offsets = sorted(md.offset for mds in results.values() for md in mds)
    assert offsets == list(range(1, 2001))
    records = dict(read_all(bootstrap, TopicPartition("t", 0), 2001))
    for n, mds in results.items():
        # each thread's records are in its send order, at the offsets its futures report
        assert [records[md.offset] for md in mds] == [b"%d-%d" % (n, i) for i in range(500)]
        assert [md.offset for md in mds] == sorted(md.offset for md in mds)


def test_send_outside_a_transaction_is_refused(
    kafka_cluster_sync: BlockingEmbeddedCluster,
) -> None:
    with KafkaProducer(bootstrap_servers=kafka_cluster_sync.bootstrap_servers,
                       transactional_id="tx-refuse") as producer:
        producer.init_transactions()
        with pytest.raises(IllegalOperation):
            producer.send("t", b"no transaction")


@pytest.mark.kafka_cluster(partitions=3)
def test_threads_send_unkeyed_records_at_once(
        kafka_cluster_sync: BlockingEmbeddedCluster) -> None:
    """Unkeyed records take the one-call fast path under the accumulator's lock: from four
    threads at once, every record lands exactly once, each thread's records keep their
    order within a partition, and neither send() nor flush() waits for the loop."""
    bootstrap = kafka_cluster_sync.bootstrap_servers
    loop = get_loop_thread()
    with KafkaProducer(bootstrap_servers=bootstrap, max_batch_size=2048) as producer:
        warm = producer.send("t", b"warm").get(10)
        hops, wakeups = loop.hops, loop.wakeups
        assert producer._fast_append is not None
        results: dict[int, list[RecordMetadata]] = {}

        def sender(n: int) -> None:
            futures = [producer.send("t", b"%d-%d" % (n, i)) for i in range(2000)]
            producer.flush()
            results[n] = [f.get(20) for f in futures]

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert loop.hops == hops, "send() or flush() waited for the loop"
        assert loop.wakeups - wakeups < 8000 // 10, "a wakeup per record"
    offsets: dict[int, list[int]] = {warm.partition: [warm.offset]}
    for mds in results.values():
        for md in mds:
            offsets.setdefault(md.partition, []).append(md.offset)
    assert len(offsets) > 1, "the sticky partitioner never moved on"
    for partition, taken in offsets.items():
        # each offset of the partition holds exactly one of the records sent
        assert sorted(taken) == list(range(len(taken)))
        stored = dict(read_all(bootstrap, TopicPartition("t", partition), len(taken)))
        for n, mds in results.items():
            mine = [(i, md) for i, md in enumerate(mds) if md.partition == partition]
            assert [md.offset for _, md in mine] == sorted(md.offset for _, md in mine)
            for i, md in mine:  # what each future reports is where its own record is
                assert stored[md.offset] == b"%d-%d" % (n, i)
