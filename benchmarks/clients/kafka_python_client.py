"""kafka-python child: produce or consume one workload and report it."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.workload import Measurement, Runner, Stopwatch, Workload, client_main


def _produce(w: Workload) -> Measurement:
    import kafka
    from kafka import KafkaProducer

    config: dict[str, Any] = {"bootstrap_servers": w.bootstrap}
    if w.acks is not None:
        config["acks"] = "all" if w.acks == "all" else int(w.acks)
    if w.linger_ms is not None:
        config["linger_ms"] = w.linger_ms
    if w.batch_size is not None:
        config["batch_size"] = w.batch_size
    producer = KafkaProducer(**config)
    # connect and fetch the topic's metadata before the clock starts
    producer.partitions_for(w.topic)
    value = w.payload()
    keys = w.keys()
    send = producer.send
    topic = w.topic
    futures = []
    append = futures.append
    m = Measurement(client="kafka-python", mode=w.mode, backend="threads", n=w.n,
                    version=kafka.__version__)
    try:
        with Stopwatch() as sw:
            for i in range(w.n):
                append(send(topic, value, keys[i & 63] if keys is not None else None))
            producer.flush(timeout=w.stall_timeout_s * 4)
    finally:
        producer.close(timeout=5)
    failed = [f for f in futures if not f.succeeded()]
    m.records = len(futures) - len(failed)
    m.value_bytes = m.records * w.size
    if failed:
        m.reason = repr(failed[0].exception)
    m.settings = {"acks": producer.config["acks"], "linger_ms": producer.config["linger_ms"],
                  "batch_size": producer.config["batch_size"],
                  "idempotence": producer.config["enable_idempotence"],
                  "delivery": "futures checked after flush"}
    return sw.fill(m)


def _consume(w: Workload) -> Measurement:
    import kafka
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=w.bootstrap, group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    # connect and learn the leaders before the clock starts, as aiokafka's start() does
    consumer.partitions_for_topic(w.topic)
    consumer.assign([TopicPartition(w.topic, p) for p in range(w.partitions)])
    m = Measurement(client="kafka-python", mode=w.mode, backend="threads", n=w.n,
                    version=kafka.__version__)
    received = 0
    value_bytes = 0
    poll = consumer.poll
    try:
        with Stopwatch() as sw:
            last_progress = time.monotonic()
            while received < w.n:
                batches = poll(timeout_ms=1000)
                if not batches:
                    if time.monotonic() - last_progress > w.stall_timeout_s:
                        break
                    continue
                last_progress = time.monotonic()
                for records in batches.values():
                    for record in records:
                        value_bytes += len(record.value)
                    received += len(records)
    finally:
        consumer.close()
    m.records = received
    m.value_bytes = value_bytes
    m.settings = {"api": "poll(timeout_ms=1000)",
                  "max_poll_records": consumer.config["max_poll_records"],
                  "assign": "no group"}
    return sw.fill(m)


def _load() -> tuple[Runner, Runner]:
    import kafka  # noqa: F401  (fail early, as "unavailable", if missing)

    return _produce, _consume


if __name__ == "__main__":
    raise SystemExit(client_main("kafka-python", _load))
