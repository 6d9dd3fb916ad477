"""confluent-kafka against an embedded cluster with a log dir: restarts, damage, retention, compaction."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import confluent_kafka
import pytest

from streamclient.broker import BlockingEmbeddedCluster
from streamclient.protocol.records import iter_batches
from streamclient.testing.ports import free_port_run

pytestmark = pytest.mark.interop

FAST = {"group_initial_rebalance_delay_ms": 0, "offsets_topic_num_partitions": 5,
        "transaction_state_log_num_partitions": 5}


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def produce(producer: confluent_kafka.Producer, topic: str, items: list[tuple[bytes, bytes | None]],
            *, one_by_one: bool = False, timestamp: int = 0) -> list[tuple[int, int]]:
    """Produce ``items``; returns (partition, offset) per item, in order."""
    results: list[Any] = [None] * len(items)

    def report(i: int) -> Callable[[Any, Any], None]:
        def on_delivery(err: Any, msg: Any) -> None:
            results[i] = err if err is not None else (msg.partition(), msg.offset())
        return on_delivery

    for i, (key, value) in enumerate(items):
        producer.produce(topic, key=key, value=value, on_delivery=report(i), timestamp=timestamp)
        if one_by_one:
            assert producer.flush(30) == 0
    assert producer.flush(30) == 0
    assert all(isinstance(r, tuple) for r in results), results
    return results


def consume_all(bootstrap: str, topic: str, partitions: int, expected: int,
                **extra: Any) -> list[Any]:
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "reader",
                                         "enable.auto.commit": False, **extra})
    try:
        consumer.assign([confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
                         for p in range(partitions)])
        messages: list[Any] = []
        deadline = time.monotonic() + 30
        while len(messages) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None:
                assert msg.error() is None, msg.error()
                messages.append(msg)
        # nothing beyond what was expected arrives
        extra_msg = consumer.poll(0.5)
        assert extra_msg is None or extra_msg.error() is not None
        return messages
    finally:
        consumer.close()


def watermarks(bootstrap: str, topic: str, partitions: int) -> list[tuple[int, int]]:
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "wm"})
    try:
        return [consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, p),
                                               timeout=10) for p in range(partitions)]
    finally:
        consumer.close()


def producer_states(cluster: BlockingEmbeddedCluster, topic: str,
                    partitions: int) -> list[dict[int, tuple[int, int]]]:
    def read() -> list[dict[int, tuple[int, int]]]:
        out = []
        for p in range(partitions):
            log = cluster.state.partition_log(topic, p)
            assert log is not None
            out.append({pid: (e.producer_epoch, e.last_seq)
                        for pid, e in log.producers.producers.items()})
        return out
    return cluster.call(read)


def test_restart_keeps_records_offsets_groups_and_idempotent_producer(tmp_path: Path) -> None:
    port = free_port_run(3)
    settings = {"log_dir": str(tmp_path), "port": port, **FAST}
    with BlockingEmbeddedCluster(3, **settings) as cluster:
        cluster.call(lambda: cluster.state.create_topic("d", 3, 3, {"segment.bytes": "2000"}))
        producer = confluent_kafka.Producer({
            "bootstrap.servers": cluster.bootstrap_servers, "enable.idempotence": True,
            "acks": "all", "linger.ms": 2, "reconnect.backoff.max.ms": 200})
        first = produce(producer, "d", [(b"k%d" % i, b"v%d" % i) for i in range(300)])
        marks = watermarks(cluster.bootstrap_servers, "d", 3)
        committed = [confluent_kafka.TopicPartition("d", p, high // 2)
                     for p, (_, high) in enumerate(marks)]
        group = confluent_kafka.Consumer({"bootstrap.servers": cluster.bootstrap_servers,
                                          "group.id": "g", "enable.auto.commit": False})
        group.commit(offsets=committed, asynchronous=False)
        group.close()
        states = producer_states(cluster, "d", 3)
        assert all(states) and cluster.errors == []

    with BlockingEmbeddedCluster(3, **settings) as cluster:
        assert watermarks(cluster.bootstrap_servers, "d", 3) == marks
        assert producer_states(cluster, "d", 3) == states
        group = confluent_kafka.Consumer({"bootstrap.servers": cluster.bootstrap_servers,
                                          "group.id": "g", "enable.auto.commit": False})
        try:
            back = group.committed([confluent_kafka.TopicPartition("d", p) for p in range(3)],
                                   timeout=10)
            assert [(tp.partition, tp.offset) for tp in back] == [
                (tp.partition, tp.offset) for tp in committed]
        finally:
            group.close()
        # the producer from before the restart goes on: offsets continue, nothing repeats
        second = produce(producer, "d", [(b"k%d" % i, b"v%d" % i) for i in range(300, 450)])
        per_partition: dict[int, list[int]] = {}
        for p, offset in first + second:
            per_partition.setdefault(p, []).append(offset)
        for p, offsets in per_partition.items():
            assert sorted(offsets) == list(range(len(offsets))), p
        messages = consume_all(cluster.bootstrap_servers, "d", 3, 450)
        assert sorted(m.value() for m in messages) == sorted(b"v%d" % i for i in range(450))
        assert cluster.errors == []


def one_node(tmp_path: Path, **extra: Any) -> BlockingEmbeddedCluster:
    return BlockingEmbeddedCluster(1, log_dir=str(tmp_path), **FAST, **extra)


@pytest.mark.parametrize("damage", ["cut", "flip"])
def test_damaged_tail_is_recovered_and_intact_data_served(tmp_path: Path, damage: str) -> None:
    with one_node(tmp_path) as cluster:
        cluster.call(lambda: cluster.state.create_topic("r", 1, 1, {"index.interval.bytes": "1"}))
        producer = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap_servers,
                                             "linger.ms": 0})
        produce(producer, "r", [(b"k%d" % i, b"value-%d" % i) for i in range(40)],
                one_by_one=True)
    segment = sorted((tmp_path / "r-0").glob("*.log"))[-1]
    data = bytearray(segment.read_bytes())
    if damage == "cut":
        data = data[:-10]
    else:
        data[-5] ^= 0x55
    segment.write_bytes(bytes(data))
    (tmp_path / "r-0" / segment.name.replace(".log", ".index")).unlink()
    with one_node(tmp_path) as cluster:
        report = cluster.call(lambda: cluster.state.partition_log("r", 0).store.recovery)
        assert report.truncated and report.rebuilt_indexes
        messages = consume_all(cluster.bootstrap_servers, "r", 1, 39)
        assert [(m.offset(), m.value()) for m in messages] == [
            (i, b"value-%d" % i) for i in range(39)]
        assert watermarks(cluster.bootstrap_servers, "r", 1) == [(0, 39)]
        # the log takes new data right after the cut
        producer = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap_servers})
        assert produce(producer, "r", [(b"n", b"new")]) == [(0, 39)]
        assert cluster.errors == []


def test_retention_by_time_and_by_size_moves_the_earliest_offset(tmp_path: Path) -> None:
    with one_node(tmp_path, log_retention_check_interval_ms=50) as cluster:
        cluster.call(lambda: cluster.state.create_topic(
            "old", 1, 1, {"segment.bytes": "1", "retention.ms": "600000"}))
        cluster.call(lambda: cluster.state.create_topic(
            "big", 1, 1, {"segment.bytes": "1", "retention.bytes": "1000"}))
        producer = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap_servers,
                                             "linger.ms": 0})
        hour_ago = int(time.time() * 1000) - 3_600_000
        produce(producer, "old", [(b"o", b"x")] * 5, one_by_one=True, timestamp=hour_ago)
        produce(producer, "old", [(b"n", b"y")] * 3, one_by_one=True)
        produce(producer, "big", [(b"b", b"z" * 200)] * 20, one_by_one=True)

        wait_for(lambda: watermarks(cluster.bootstrap_servers, "old", 1) == [(5, 8)])
        assert [m.offset() for m in consume_all(cluster.bootstrap_servers, "old", 1, 3)] == [
            5, 6, 7]
        wait_for(lambda: watermarks(cluster.bootstrap_servers, "big", 1)[0][0] > 0)
        low, high = watermarks(cluster.bootstrap_servers, "big", 1)[0]
        size = cluster.call(lambda: cluster.state.partition_log("big", 0).store.size_bytes)
        one = size // (high - low)
        assert high == 20 and size - one < 1000 <= size + one
        assert len(consume_all(cluster.bootstrap_servers, "big", 1, high - low)) == high - low
        files = sorted(p.name for p in (tmp_path / "old-0").glob("*.log"))
        assert files == [f"{b:020d}.log" for b in range(5, 8)]
        assert cluster.errors == []


def test_compaction_keeps_the_latest_value_per_key_and_drops_tombstones(tmp_path: Path) -> None:
    with one_node(tmp_path, log_retention_check_interval_ms=50) as cluster:
        cluster.call(lambda: cluster.state.create_topic(
            "c", 1, 1, {"cleanup.policy": "compact", "segment.bytes": "1",
                        "delete.retention.ms": "0"}))
        producer = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap_servers,
                                             "linger.ms": 0})
        items: list[tuple[bytes, bytes | None]] = [
            (b"k%d" % (i % 4), b"v%d" % i) for i in range(16)]
        items += [(b"k0", None), (b"end", b"last")]
        offsets = [o for _, o in produce(producer, "c", items, one_by_one=True)]
        latest = {key: (offsets[i], value) for i, (key, value) in enumerate(items)}
        expected = sorted((o, k, v) for k, (o, v) in latest.items() if v is not None)

        def stored_records() -> int:
            log = cluster.state.partition_log("c", 0)
            assert log is not None
            return sum(len(b) for b in iter_batches(log.read(0, 1 << 30).records))

        wait_for(lambda: cluster.call(stored_records) == len(expected))
        messages = consume_all(cluster.bootstrap_servers, "c", 1, len(expected))
        assert sorted((m.offset(), m.key(), m.value()) for m in messages) == expected
        # offsets are kept, so the earliest offset does not move; k0 is gone entirely
        assert watermarks(cluster.bootstrap_servers, "c", 1) == [(0, 18)]
        assert cluster.errors == []
