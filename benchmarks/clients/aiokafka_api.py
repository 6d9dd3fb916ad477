"""The produce and consume workloads through aiokafka's API.

aiokafka and streamclient share that API, so both children run exactly this code: a
change to the workload applies to both, and what the table compares is the library.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import anyio

from benchmarks.workload import Measurement, Stopwatch, Workload


@dataclass(frozen=True)
class AiokafkaApi:
    """A library with aiokafka's producer and consumer classes."""

    client: str
    version: str
    producer_type: Any
    consumer_type: Any
    topic_partition: Any
    # how the library's own defaults read in the settings printed under the table
    default_labels: dict[str, str]


async def produce(w: Workload, api: AiokafkaApi, backend: str) -> Measurement:
    config: dict[str, Any] = {"bootstrap_servers": w.bootstrap, "acks": w.acks or "all"}
    if w.acks is not None and w.acks != "all":
        config["acks"] = int(w.acks)
    if w.linger_ms is not None:
        config["linger_ms"] = w.linger_ms
    if w.batch_size is not None:
        config["max_batch_size"] = w.batch_size
    producer = api.producer_type(**config)
    await producer.start()
    m = Measurement(client=api.client, mode=w.mode, backend=backend, n=w.n,
                    version=api.version)
    try:
        await producer.partitions_for(w.topic)
        value = w.payload()
        keys = w.keys()
        send = producer.send
        topic = w.topic
        futures = []
        append = futures.append
        with Stopwatch() as sw:
            for i in range(w.n):
                # send() returns once the record is in the accumulator; the future it
                # returns resolves on delivery
                append(await send(topic, value, keys[i & 63] if keys is not None else None))
            with anyio.fail_after(w.stall_timeout_s * 4):
                await producer.flush()
    finally:
        await producer.stop()
    failed = [f for f in futures if not f.done() or f.exception() is not None]
    m.records = len(futures) - len(failed)
    m.value_bytes = m.records * w.size
    if failed:
        m.reason = repr(failed[0].exception()) if failed[0].done() else "not delivered"
    labels = api.default_labels
    m.settings = {"acks": config["acks"], "linger_ms": w.linger_ms or labels["linger_ms"],
                  "max_batch_size": w.batch_size or labels["max_batch_size"],
                  "idempotence": labels["idempotence"],
                  "delivery": "futures checked after flush"}
    return sw.fill(m)


async def consume(w: Workload, api: AiokafkaApi, backend: str) -> Measurement:
    consumer = api.consumer_type(bootstrap_servers=w.bootstrap, group_id=None,
                                 auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    m = Measurement(client=api.client, mode=w.mode, backend=backend, n=w.n,
                    version=api.version)
    received = 0
    value_bytes = 0
    try:
        consumer.assign([api.topic_partition(w.topic, p) for p in range(w.partitions)])
        getmany = consumer.getmany
        with Stopwatch() as sw:
            last_progress = time.monotonic()
            while received < w.n:
                # max_records left at its default: everything already fetched
                batches = await getmany(timeout_ms=1000)
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
        await consumer.stop()
    m.records = received
    m.value_bytes = value_bytes
    m.settings = {"api": "getmany(timeout_ms=1000)", "assign": "no group"}
    return sw.fill(m)
