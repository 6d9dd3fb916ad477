"""Writing test records with the async producer, so the consumer tests do not depend on
the blocking producer."""

from __future__ import annotations

from collections.abc import Callable

from streamclient.producer.producer import AIOKafkaProducer

#: ``produce(topic, partition, count) -> offsets``
Produce = Callable[[str, int, int], list[int]]


async def produce_async(bootstrap: str, topic: str, partition: int, count: int) -> list[int]:
    """``count`` records ``v0``, ``v1``, … with keys ``k0``, …; their offsets."""
    async with AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5) as producer:
        futures = [
            await producer.send(topic, b"v%d" % i, key=b"k%d" % i, partition=partition)
            for i in range(count)
        ]
        return [(await f).offset for f in futures]
