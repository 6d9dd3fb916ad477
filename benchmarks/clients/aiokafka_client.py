"""aiokafka child (asyncio): produce or consume one workload and report it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.workload import Measurement, Runner, Stopwatch, Workload, client_main

GETMANY_MAX_RECORDS = None  # aiokafka's default: everything already fetched


async def _produce(w: Workload) -> Measurement:
    import aiokafka
    from aiokafka import AIOKafkaProducer

    config: dict[str, Any] = {"bootstrap_servers": w.bootstrap, "acks": w.acks or "all"}
    if w.acks is not None and w.acks != "all":
        config["acks"] = int(w.acks)
    if w.linger_ms is not None:
        config["linger_ms"] = w.linger_ms
    if w.batch_size is not None:
        config["max_batch_size"] = w.batch_size
    producer = AIOKafkaProducer(**config)
    await producer.start()
    m = Measurement(client="aiokafka", mode=w.mode, backend="asyncio", n=w.n,
                    version=aiokafka.__version__)
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
            await asyncio.wait_for(producer.flush(), w.stall_timeout_s * 4)
    finally:
        await producer.stop()
    failed = [f for f in futures if not f.done() or f.exception() is not None]
    m.records = len(futures) - len(failed)
    m.value_bytes = m.records * w.size
    if failed:
        m.reason = repr(failed[0].exception()) if failed[0].done() else "not delivered"
    m.settings = {"acks": config["acks"], "linger_ms": w.linger_ms or "default (0)",
                  "max_batch_size": w.batch_size or "default (16384)",
                  "idempotence": "default (off)", "delivery": "futures checked after flush"}
    return sw.fill(m)


async def _consume(w: Workload) -> Measurement:
    import aiokafka
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=w.bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    m = Measurement(client="aiokafka", mode=w.mode, backend="asyncio", n=w.n,
                    version=aiokafka.__version__)
    received = 0
    value_bytes = 0
    try:
        consumer.assign([TopicPartition(w.topic, p) for p in range(w.partitions)])
        getmany = consumer.getmany
        with Stopwatch() as sw:
            last_progress = time.monotonic()
            while received < w.n:
                batches = await getmany(timeout_ms=1000, max_records=GETMANY_MAX_RECORDS)
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


def _load() -> tuple[Runner, Runner]:
    import aiokafka  # noqa: F401  (fail early, as "unavailable", if missing)

    def produce(w: Workload) -> Measurement:
        return asyncio.run(_produce(w))

    def consume(w: Workload) -> Measurement:
        return asyncio.run(_consume(w))

    return produce, consume


if __name__ == "__main__":
    raise SystemExit(client_main("aiokafka", _load))
