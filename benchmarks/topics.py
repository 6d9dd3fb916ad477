"""Topic chores of the harness, done with confluent-kafka in the harness process (its CPU
is not measured): create a fresh topic, pre-fill one for the consumers, count what a
producer left behind, delete it afterwards.
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["TopicError", "count_records", "create_topic", "delete_topic", "prefill_topic"]

ADMIN_TIMEOUT_S = 30.0


class TopicError(RuntimeError):
    """A topic could not be created, filled or counted."""


def _admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    # log_level 3: keep librdkafka's teardown notices out of the report
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import NewTopic

    # the admin client must outlive its futures, or librdkafka cancels them
    admin = _admin(bootstrap)
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        operation_timeout=ADMIN_TIMEOUT_S, request_timeout=ADMIN_TIMEOUT_S)
    try:
        futures[topic].result(timeout=ADMIN_TIMEOUT_S)
    except Exception as exc:
        raise TopicError(f"cannot create topic {topic!r}: {exc!r}") from exc


def delete_topic(bootstrap: str, topic: str) -> None:
    """Free the broker's memory between runs; a failure here only costs memory."""
    admin = _admin(bootstrap)
    futures = admin.delete_topics([topic], operation_timeout=ADMIN_TIMEOUT_S,
                                              request_timeout=ADMIN_TIMEOUT_S)
    with contextlib.suppress(Exception):
        futures[topic].result(timeout=ADMIN_TIMEOUT_S)


def prefill_topic(bootstrap: str, topic: str, partitions: int, n: int, size: int,
                  key: bool = False) -> None:
    """Write ``n`` records of ``size`` bytes spread evenly over the partitions."""
    from confluent_kafka import Producer

    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None and len(failures) < 5:
            failures.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
                         "on_delivery": on_delivery})
    value = b"m" * size
    keys = [f"key-{i:04d}".encode() for i in range(64)]
    for i in range(n):
        while True:
            try:
                producer.produce(topic, value, keys[i & 63] if key else None,
                                 partition=i % partitions)
                break
            except BufferError:
                producer.poll(0.05)
    left = producer.flush(ADMIN_TIMEOUT_S * 4)
    if left or failures:
        raise TopicError(f"pre-filling {topic!r}: {left} records undelivered, "
                         f"errors: {failures}")


def count_records(bootstrap: str, topic: str, partitions: int) -> int:
    """Sum of the partitions' high watermarks (via ListOffsets)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-count-{topic}",
                         "enable.auto.commit": False})
    try:
        total = 0
        for p in range(partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=ADMIN_TIMEOUT_S, cached=False)
            total += high - low
        return total
    except Exception as exc:
        raise TopicError(f"cannot count the records of {topic!r}: {exc!r}") from exc
    finally:
        consumer.close()
