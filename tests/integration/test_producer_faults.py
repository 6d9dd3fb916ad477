"""The idempotent producer under injected broker faults, back-pressure and timeouts.

Every scenario checks the log itself (read back by raw Fetch): each partition holds
exactly the records sent to it, once each, in the order they were sent, and every
record's acknowledged offset is where it really is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest
from tests.integration.test_producer_roundtrip import read_topic

from streamclient import AIOKafkaProducer
from streamclient.broker import EmbeddedCluster
from streamclient.errors import KafkaTimeoutError
from streamclient.protocol.messages.produce import ProduceRequest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

PARTITIONS = 4
NOT_LEADER_OR_FOLLOWER = 6

Injector = Callable[[EmbeddedCluster, int], Awaitable[None] | None]


async def produce_with_faults(cluster: EmbeddedCluster, topic: str, count: int,
                              inject: Injector, *, steps: int = 4) -> None:
    """Send ``count`` records round-robin over the partitions, calling ``inject(cluster,
    step)`` at ``steps`` points mid-stream, then check the log."""
    bootstrap = cluster.bootstrap_servers
    async with AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=2048,
                                linger_ms=1, retry_backoff_ms=10, retry_backoff_max_ms=50,
                                request_timeout_ms=5_000) as producer:
        await producer.partitions_for(topic)
        futures = []
        every = count // steps
        for i in range(count):
            if i % every == every // 2:
                maybe = inject(cluster, i // every)
                if maybe is not None:
                    await maybe
            futures.append(await producer.send(topic, str(i).encode(),
                                               partition=i % PARTITIONS))
            if i % 256 == 0:
                await anyio.sleep(0)  # the sender runs: faults hit requests in flight
        with anyio.fail_after(60):
            await producer.flush()
    errors = [f.exception() for f in futures if f.exception() is not None]
    assert not errors, errors[:3]
    logs = await read_topic(bootstrap, topic, range(PARTITIONS))
    for partition in range(PARTITIONS):
        expected = [str(i).encode() for i in range(partition, count, PARTITIONS)]
        got = [r.value for r in logs[partition]]
        assert len(got) == len(set(got)), f"duplicates in partition {partition}"
        assert got == expected, f"partition {partition}: lost or reordered records"
    for i, future in enumerate(futures):
        meta = future.result()
        assert meta is not None
        assert logs[meta.partition][meta.offset].value == str(i).encode()


@pytest.mark.kafka_cluster(nodes=3, partitions=PARTITIONS, replication_factor=3)
async def test_not_leader_errors(kafka_cluster: EmbeddedCluster) -> None:
    rules = []

    def inject(cluster: EmbeddedCluster, step: int) -> None:
        rules.append(cluster.faults.control(ProduceRequest, error=NOT_LEADER_OR_FOLLOWER,
                                            times=4))

    await produce_with_faults(kafka_cluster, "f-not-leader", 8000, inject)
    assert [r.hits for r in rules] == [4] * 4


@pytest.mark.kafka_cluster(nodes=3, partitions=PARTITIONS, replication_factor=3)
async def test_connection_dropped_after_the_write(kafka_cluster: EmbeddedCluster) -> None:
    rules = []

    def inject(cluster: EmbeddedCluster, step: int) -> None:
        # the broker appends the batch, then hangs up instead of answering: the retry
        # must be recognised as a duplicate, not written twice
        rules.append(cluster.faults.control(ProduceRequest, drop="after", times=2))

    await produce_with_faults(kafka_cluster, "f-drop", 8000, inject)
    assert [r.hits for r in rules] == [2] * 4


@pytest.mark.kafka_cluster(nodes=3, partitions=PARTITIONS, replication_factor=3)
async def test_delayed_responses(kafka_cluster: EmbeddedCluster) -> None:
    rules = []

    def inject(cluster: EmbeddedCluster, step: int) -> None:
        rules.append(cluster.faults.control(ProduceRequest, delay_ms=100, times=6))

    await produce_with_faults(kafka_cluster, "f-delay", 8000, inject)
    assert [r.hits for r in rules] == [6] * 4


@pytest.mark.kafka_cluster(nodes=3, partitions=PARTITIONS, replication_factor=3)
async def test_leaders_move_mid_stream(kafka_cluster: EmbeddedCluster) -> None:
    topic = "f-move"
    moved = []

    def inject(cluster: EmbeddedCluster, step: int) -> None:
        # each move goes to a node that has not led the partition yet: a leader that
        # moves away and back while requests still queue at it could accept a later
        # sequence first (a broker with no state for a producer takes any sequence)
        for partition in range(PARTITIONS):
            state = cluster.state.topics[topic].partitions[partition]
            target = (state.leader + 1) % 3
            cluster.move_leader(topic, partition, target)
            moved.append((partition, target))

    await produce_with_faults(kafka_cluster, topic, 8000, inject, steps=2)
    assert len(moved) == 2 * PARTITIONS


@pytest.mark.kafka_cluster(nodes=3, partitions=PARTITIONS, replication_factor=3)
async def test_every_fault_together_over_20k_records(kafka_cluster: EmbeddedCluster) -> None:
    topic = "f-all"

    def inject(cluster: EmbeddedCluster, step: int) -> None:
        faults = cluster.faults
        kind = step % 4
        if kind == 0:
            faults.control(ProduceRequest, error=NOT_LEADER_OR_FOLLOWER, times=3)
        elif kind == 1:
            faults.control(ProduceRequest, drop="after", times=2)
        elif kind == 2:
            faults.control(ProduceRequest, delay_ms=80, times=4)
        else:
            partition = (step // 4) % PARTITIONS  # each partition moves at most once
            state = cluster.state.topics[topic].partitions[partition]
            cluster.move_leader(topic, partition, (state.leader + 1) % 3)

    await produce_with_faults(kafka_cluster, topic, 20_000, inject, steps=12)


async def test_full_buffer_blocks_send_then_proceeds(kafka_cluster: EmbeddedCluster) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    async with AIOKafkaProducer(bootstrap_servers=bootstrap, buffer_memory=16_384,
                                max_batch_size=4096) as producer:
        await producer.partitions_for("bp")
        rule = kafka_cluster.faults.control(ProduceRequest, delay_ms=300, times=2)
        longest = 0.0
        futures = []
        for i in range(100):  # ~100 KB through a 16 KB buffer
            started = anyio.current_time()
            futures.append(await producer.send("bp", bytes([i]) * 1000, partition=0))
            longest = max(longest, anyio.current_time() - started)
        await producer.flush()
        assert rule.hits == 2
        assert longest >= 0.2, "send() never waited for memory"
        assert [f.result().offset for f in futures] == list(range(100))


async def test_full_buffer_times_out_after_max_block_ms(kafka_cluster: EmbeddedCluster) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    async with AIOKafkaProducer(bootstrap_servers=bootstrap, buffer_memory=16_384,
                                max_batch_size=4096, max_block_ms=200) as producer:
        await producer.partitions_for("bp-timeout")
        rule = kafka_cluster.faults.control(ProduceRequest, delay_ms=1500, times=None)
        futures = []
        started = anyio.current_time()
        with pytest.raises(KafkaTimeoutError, match="max blocking time"):
            for _ in range(100):
                futures.append(await producer.send("bp-timeout", b"x" * 1000, partition=0))
        waited = anyio.current_time() - started
        assert 0.15 <= waited < 1.2
        assert 8 <= len(futures) < 100
        rule.remove()
        await producer.flush()
        # what was accepted before the timeout is delivered, in order
        assert [f.result().offset for f in futures] == list(range(len(futures)))


@pytest.mark.parametrize("fault", [{"delay_ms": 10_000}, {"drop": "before"}],
                         ids=["never-answers", "drops"])
async def test_delivery_timeout_fails_the_records(kafka_cluster: EmbeddedCluster,
                                                  fault: dict[str, object]) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    async with AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=400,
                                delivery_timeout_ms=1000, retry_backoff_ms=50) as producer:
        await producer.partitions_for("dt")
        rule = kafka_cluster.faults.control(ProduceRequest, times=None, **fault)  # type: ignore[arg-type]
        started = anyio.current_time()
        futures = [await producer.send("dt", f"{i}".encode(), partition=0) for i in range(20)]
        for future in futures:
            with pytest.raises(KafkaTimeoutError):
                await future
        elapsed = anyio.current_time() - started
        assert 0.9 <= elapsed < 3.0
        assert rule.hits >= 1
        rule.remove()
        # the producer recovers (a new epoch after the unresolved sequences) and goes on
        with anyio.fail_after(10):
            meta = await producer.send_and_wait("dt", b"after", partition=0)
        assert meta is not None
