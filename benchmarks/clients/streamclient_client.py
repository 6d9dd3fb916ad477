"""streamclient child (asyncio or trio): the same workload through aiokafka's API shape.

Written against ``streamclient.AIOKafkaProducer`` / ``AIOKafkaConsumer``; until those
facades exist the import fails and the harness reports the row as "not available".
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.workload import Measurement, Runner, Stopwatch, Workload, client_main


async def _produce(w: Workload) -> Measurement:
    import anyio

    import streamclient
    from streamclient import AIOKafkaProducer

    config: dict[str, Any] = {"bootstrap_servers": w.bootstrap, "acks": w.acks or "all"}
    if w.acks is not None and w.acks != "all":
        config["acks"] = int(w.acks)
    if w.linger_ms is not None:
        config["linger_ms"] = w.linger_ms
    if w.batch_size is not None:
        config["max_batch_size"] = w.batch_size
    producer = AIOKafkaProducer(**config)
    await producer.start()
    m = Measurement(client="streamclient", mode=w.mode, backend=w.backend, n=w.n,
                    version=streamclient.__version__)
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
    m.settings = {"acks": config["acks"], "linger_ms": w.linger_ms or "default",
                  "max_batch_size": w.batch_size or "default",
                  "idempotence": "default", "delivery": "futures checked after flush"}
    return sw.fill(m)


async def _consume(w: Workload) -> Measurement:
    import streamclient
    from streamclient import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=w.bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    m = Measurement(client="streamclient", mode=w.mode, backend=w.backend, n=w.n,
                    version=streamclient.__version__)
    received = 0
    value_bytes = 0
    try:
        consumer.assign([TopicPartition(w.topic, p) for p in range(w.partitions)])
        getmany = consumer.getmany
        with Stopwatch() as sw:
            last_progress = time.monotonic()
            while received < w.n:
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


def _load() -> tuple[Runner, Runner]:
    import anyio

    # the facades: an ImportError here means "not built yet", reported as unavailable
    from streamclient import AIOKafkaConsumer, AIOKafkaProducer  # noqa: F401

    def produce(w: Workload) -> Measurement:
        return anyio.run(_produce, w, backend=w.backend)

    def consume(w: Workload) -> Measurement:
        return anyio.run(_consume, w, backend=w.backend)

    return produce, consume


if __name__ == "__main__":
    raise SystemExit(client_main("streamclient", _load))
