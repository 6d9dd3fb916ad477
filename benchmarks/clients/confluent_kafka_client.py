"""confluent-kafka (librdkafka) child: produce or consume one workload and report it."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.workload import Measurement, Runner, Stopwatch, Workload, client_main

# records asked for per consume() call; librdkafka hands over what it has buffered
CONSUME_BATCH = 1000


def _version() -> str:
    import confluent_kafka

    return f"{confluent_kafka.version()} (librdkafka {confluent_kafka.libversion()[0]})"


def _produce(w: Workload) -> Measurement:
    from confluent_kafka import KafkaException, Producer

    config: dict[str, Any] = {"bootstrap.servers": w.bootstrap, "acks": w.acks or "all"}
    if w.linger_ms is not None:
        config["linger.ms"] = w.linger_ms
    if w.batch_size is not None:
        config["batch.size"] = w.batch_size
    acked = 0
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        # the only way librdkafka tells a delivered record from a lost one
        nonlocal acked
        if err is None:
            acked += 1
        elif len(errors) < 5:
            errors.append(str(err))

    producer = Producer({**config, "on_delivery": on_delivery})
    # connect and learn the topic's leaders outside the timed section, as the other
    # clients do in start()
    producer.list_topics(w.topic, timeout=w.stall_timeout_s)
    value = w.payload()
    keys = w.keys()
    produce = producer.produce
    topic = w.topic
    m = Measurement(client="confluent-kafka", mode=w.mode, backend="librdkafka", n=w.n,
                    version=_version())
    with Stopwatch() as sw:
        for i in range(w.n):
            key = keys[i & 63] if keys is not None else None
            while True:
                try:
                    produce(topic, value, key)
                    break
                except BufferError:
                    # the local queue is full: serve delivery reports until it drains
                    producer.poll(0.01)
        remaining = producer.flush(w.stall_timeout_s * 4)
    if remaining:
        raise KafkaException(f"{remaining} records still queued after flush")
    m.records = acked
    m.value_bytes = acked * w.size
    m.reason = "; ".join(errors)
    m.settings = {"acks": config["acks"], "linger.ms": w.linger_ms or "default (5)",
                  "batch.size": w.batch_size or "default (1000000)",
                  "idempotence": "default (off)", "delivery": "on_delivery callback"}
    return sw.fill(m)


def _consume(w: Workload) -> Measurement:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": w.bootstrap,
        # librdkafka wants a group id even for assign(); no group is joined
        "group.id": f"bench-{w.topic}",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    })
    # connect and learn the leaders before the clock starts, as aiokafka's start() does
    consumer.list_topics(w.topic, timeout=w.stall_timeout_s)
    consumer.assign([TopicPartition(w.topic, p, OFFSET_BEGINNING)
                     for p in range(w.partitions)])
    m = Measurement(client="confluent-kafka", mode=w.mode, backend="librdkafka", n=w.n,
                    version=_version())
    received = 0
    value_bytes = 0
    consume = consumer.consume
    try:
        with Stopwatch() as sw:
            last_progress = time.monotonic()
            while received < w.n:
                batch = consume(num_messages=CONSUME_BATCH, timeout=1.0)
                if not batch:
                    if time.monotonic() - last_progress > w.stall_timeout_s:
                        break
                    continue
                last_progress = time.monotonic()
                for msg in batch:
                    if msg.error() is not None:
                        raise RuntimeError(str(msg.error()))
                    value_bytes += len(msg.value())
                received += len(batch)
    finally:
        consumer.close()
    m.records = received
    m.value_bytes = value_bytes
    m.settings = {"api": f"consume(num_messages={CONSUME_BATCH})", "assign": "no group"}
    return sw.fill(m)


def _load() -> tuple[Runner, Runner]:
    import confluent_kafka  # noqa: F401  (fail early, as "unavailable", if missing)

    return _produce, _consume


if __name__ == "__main__":
    raise SystemExit(client_main("confluent-kafka", _load))
