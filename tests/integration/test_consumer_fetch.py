"""AIOKafkaConsumer without a group against the embedded broker (asyncio and trio):
assign + consume, seek / pause / resume / positions, the offset APIs, auto_offset_reset,
deserializers and the lifecycle rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import anyio
import pytest

from streamclient import AIOKafkaConsumer, ConsumerRecord, ConsumerStoppedError, TopicPartition
from streamclient.broker import EmbeddedCluster
from streamclient.cluster import ClusterClient
from streamclient.errors import (
    IllegalOperation,
    IllegalStateError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
)
from streamclient.protocol.messages.produce import ProduceRequest
from streamclient.protocol.records import RecordBatchBuilder

pytestmark = pytest.mark.anyio

BOUND_S = 20


async def produce(
    bootstrap: str,
    topic: str,
    partition: int,
    values: Sequence[bytes | None],
    *,
    keys: Sequence[bytes | None] | None = None,
    timestamps: Sequence[int] | None = None,
) -> int:
    """Produce ``values`` as one batch; returns the base offset."""
    builder = RecordBatchBuilder()
    for i, value in enumerate(values):
        ts = timestamps[i] if timestamps is not None else 1_700_000_000_000 + i
        key = keys[i] if keys is not None else None
        assert builder.append(ts, key, value, ()) is not None
    data = ProduceRequest.TopicProduceData(
        name=topic,
        partition_data=[
            ProduceRequest.TopicProduceData.PartitionProduceData(
                index=partition, records=builder.build()
            )
        ],
    )
    async with ClusterClient(bootstrap_servers=bootstrap) as client:
        await client.wait_for_topic(topic, 5_000)
        response = await client.send_to_leader(
            TopicPartition(topic, partition),
            ProduceRequest(acks=-1, timeout_ms=5_000, topic_data=[data]),
        )
    [part] = response.responses[0].partition_responses
    assert part.error_code == 0, part
    return int(part.base_offset)


def consumer(cluster: EmbeddedCluster, *topics: str, **kwargs: Any) -> AIOKafkaConsumer:
    kwargs.setdefault("fetch_max_wait_ms", 100)
    kwargs.setdefault("request_timeout_ms", 5_000)
    kwargs.setdefault("retry_backoff_ms", 20)
    return AIOKafkaConsumer(*topics, bootstrap_servers=cluster.bootstrap_servers, **kwargs)


async def take(
    c: AIOKafkaConsumer, count: int, *partitions: TopicPartition
) -> list[ConsumerRecord[Any, Any]]:
    out: list[ConsumerRecord[Any, Any]] = []
    with anyio.fail_after(BOUND_S):
        while len(out) < count:
            batch = await c.getmany(*partitions, timeout_ms=200)
            for records in batch.values():
                out.extend(records)
    return out


def values_of(records: Iterable[ConsumerRecord[Any, Any]]) -> list[Any]:
    return [r.value for r in records]


@pytest.mark.kafka_cluster(partitions=2)
async def test_assign_and_consume_round_trip(kafka_cluster: EmbeddedCluster) -> None:
    tp0, tp1 = TopicPartition("rt", 0), TopicPartition("rt", 1)
    kafka_cluster.state.create_topic("rt", 2)
    await produce(kafka_cluster.bootstrap_servers, "rt", 0, [b"a", b"b", None], keys=[b"k", None, b"z"])
    await produce(kafka_cluster.bootstrap_servers, "rt", 1, [b"c"])
    c = consumer(kafka_cluster, auto_offset_reset="earliest")
    c.assign([tp0, tp1])
    async with c:
        records = await take(c, 4)
        by_tp: dict[TopicPartition, list[ConsumerRecord[Any, Any]]] = {}
        for r in records:
            by_tp.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
        assert values_of(by_tp[tp0]) == [b"a", b"b", None]
        assert [r.key for r in by_tp[tp0]] == [b"k", None, b"z"]
        assert [r.offset for r in by_tp[tp0]] == [0, 1, 2]
        assert by_tp[tp0][2].serialized_value_size == -1
        assert by_tp[tp0][0].timestamp == 1_700_000_000_000
        assert values_of(by_tp[tp1]) == [b"c"]
        assert await c.position(tp0) == 3
        assert await c.position(tp1) == 1
        assert c.highwater(tp0) == 3
        assert c.last_poll_timestamp(tp0) is not None
        assert c.assignment() == {tp0, tp1}
        # more data arrives while a getone waits
        async with anyio.create_task_group() as tg:
            got: list[ConsumerRecord[Any, Any]] = []

            async def one() -> None:
                got.append(await c.getone(tp1))

            tg.start_soon(one)
            await produce(kafka_cluster.bootstrap_servers, "rt", 1, [b"d"])
        assert values_of(got) == [b"d"]


@pytest.mark.kafka_cluster(partitions=1)
async def test_seek_pause_resume_and_offsets(kafka_cluster: EmbeddedCluster) -> None:
    tp = TopicPartition("sp", 0)
    kafka_cluster.state.create_topic("sp", 1)
    await produce(
        kafka_cluster.bootstrap_servers,
        "sp",
        0,
        [b"%d" % i for i in range(10)],
        timestamps=[1_000 * (i + 1) for i in range(10)],
    )
    c = consumer(kafka_cluster, auto_offset_reset="earliest", max_poll_records=3)
    c.assign([tp])
    async with c:
        assert values_of(await take(c, 3)) == [b"0", b"1", b"2"]  # max_poll_records
        assert await c.position(tp) == 3
        c.seek(tp, 7)
        assert values_of(await take(c, 3)) == [b"7", b"8", b"9"]
        assert await c.seek_to_beginning(tp) is True
        assert await c.position(tp) == 0
        assert await c.seek_to_end() is True
        assert await c.position(tp) == 10
        c.seek(tp, 5)
        c.pause(tp)
        assert c.paused() == {tp}
        assert await c.getmany(timeout_ms=300) == {}
        c.resume(tp)
        assert c.paused() == set()
        assert values_of(await take(c, 3)) == [b"5", b"6", b"7"]
        assert await c.beginning_offsets([tp]) == {tp: 0}
        assert await c.end_offsets([tp]) == {tp: 10}
        found = await c.offsets_for_times({tp: 4_500})
        assert found[tp] is not None and found[tp].offset == 4  # type: ignore[union-attr]
        assert found[tp].timestamp == 5_000  # type: ignore[union-attr]
        assert await c.offsets_for_times({tp: 99_000}) == {tp: None}
        assert c.partitions_for_topic("sp") == {0}
        assert "sp" in await c.topics()
        with pytest.raises(ValueError):
            c.seek(tp, -1)
        with pytest.raises(IllegalStateError):
            c.seek(TopicPartition("sp", 9), 0)
        with pytest.raises(TypeError):
            c.pause("sp")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await c.getmany(max_records=0)
        with pytest.raises(ValueError):
            await c.offsets_for_times({tp: -5})
        with pytest.raises(IllegalOperation):
            await c.commit()
        with pytest.raises(IllegalOperation):
            await c.committed(tp)


@pytest.mark.kafka_cluster(partitions=1)
async def test_auto_offset_reset_policies(kafka_cluster: EmbeddedCluster) -> None:
    tp = TopicPartition("ar", 0)
    kafka_cluster.state.create_topic("ar", 1)
    await produce(kafka_cluster.bootstrap_servers, "ar", 0, [b"old1", b"old2"])

    latest = consumer(kafka_cluster)  # aiokafka's default is "latest"
    latest.assign([tp])
    async with latest:
        assert await latest.position(tp) == 2
        await produce(kafka_cluster.bootstrap_servers, "ar", 0, [b"new"])
        assert values_of(await take(latest, 1)) == [b"new"]

    none = consumer(kafka_cluster, auto_offset_reset="none")
    none.assign([tp])
    async with none:
        with anyio.fail_after(BOUND_S), pytest.raises(NoOffsetForPartitionError):
            while True:
                await none.getmany(timeout_ms=100)
        none.seek(tp, 1)
        assert values_of(await take(none, 2)) == [b"old2", b"new"]
        # out of range with policy none: raised to the application
        none.seek(tp, 50)
        with anyio.fail_after(BOUND_S), pytest.raises(OffsetOutOfRangeError):
            while True:
                await none.getmany(timeout_ms=100)

    earliest = consumer(kafka_cluster, auto_offset_reset="earliest")
    earliest.assign([tp])
    async with earliest:
        earliest.seek(tp, 50)  # out of range: reset by policy
        assert values_of(await take(earliest, 3)) == [b"old1", b"old2", b"new"]


@pytest.mark.kafka_cluster(partitions=1)
async def test_deserializers_run_for_null_too(kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.state.create_topic("ds", 1)
    await produce(kafka_cluster.bootstrap_servers, "ds", 0, [b"x", None], keys=[None, b"k"])
    c = consumer(
        kafka_cluster,
        "ds",
        auto_offset_reset="earliest",
        key_deserializer=lambda k: ("key", k),
        value_deserializer=lambda v: ("value", v),
    )
    async with c:
        assert c.subscription() == frozenset({"ds"})
        with anyio.fail_after(BOUND_S):
            first = await c.getone()
            second = await c.getone()
        assert (first.key, first.value) == (("key", None), ("value", b"x"))
        assert (second.key, second.value) == (("key", b"k"), ("value", None))


@pytest.mark.kafka_cluster(partitions=1)
async def test_async_for_and_lifecycle_errors(kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.state.create_topic("lc", 1)
    await produce(kafka_cluster.bootstrap_servers, "lc", 0, [b"1", b"2", b"3"])
    c = consumer(kafka_cluster, "lc", auto_offset_reset="earliest")
    with pytest.raises(IllegalStateError):
        await c.getmany()
    await c.start()
    with pytest.raises(IllegalStateError):
        await c.start()
    seen: list[bytes] = []
    with anyio.fail_after(BOUND_S):
        async for record in c:
            seen.append(record.value)
            if len(seen) == 3:
                break
    assert seen == [b"1", b"2", b"3"]

    # stop() from another task than start(): a clear error, and the consumer keeps working
    errors: list[BaseException] = []

    async def stop_elsewhere() -> None:
        try:
            await c.stop()
        except IllegalStateError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_elsewhere)
    assert len(errors) == 1 and "task that called start()" in str(errors[0])
    await produce(kafka_cluster.bootstrap_servers, "lc", 0, [b"4"])
    assert values_of(await take(c, 1)) == [b"4"]
    await c.stop()
    await c.stop()  # idempotent
    with pytest.raises(ConsumerStoppedError):
        await c.getone()
    with pytest.raises(ConsumerStoppedError):  # aiokafka's __aiter__ refuses too
        c.__aiter__()


@pytest.mark.kafka_cluster(partitions=1)
async def test_stop_wakes_a_waiting_getmany(kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.state.create_topic("wk", 1)
    c = consumer(kafka_cluster, "wk")
    started = anyio.Event()
    outcome: list[BaseException] = []

    async def owner() -> None:  # start() and stop() in one task, as the rule wants
        async with c:
            started.set()
            await anyio.sleep(0.2)

    async def waiter() -> None:
        await started.wait()
        try:
            await c.getmany(timeout_ms=60_000)
        except ConsumerStoppedError as exc:
            outcome.append(exc)

    with anyio.fail_after(BOUND_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(owner)
            tg.start_soon(waiter)
    assert len(outcome) == 1


async def test_construction_needs_no_loop_and_validates() -> None:
    c = AIOKafkaConsumer("a", "b", bootstrap_servers="127.0.0.1:1")
    assert c.subscription() == frozenset({"a", "b"})
    with pytest.raises(TypeError):
        AIOKafkaConsumer(bootstrap_servers="x", no_such_option=1)
    with pytest.raises(TypeError):
        c.subscribe()
    with pytest.raises(TypeError):
        c.subscribe(["a"], pattern="a.*")
    with pytest.raises(TypeError):
        c.subscribe(["a"], listener=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.subscribe("abc")
    with pytest.raises(ValueError):
        c.subscribe(pattern="(")
    with pytest.raises(IllegalStateError):
        c.assign([TopicPartition("a", 0)])
    with pytest.raises(IllegalOperation):
        c.group_metadata()
    await c.stop()  # never started: nothing to do


@pytest.mark.kafka_cluster(3, partitions=1, replication_factor=3)
async def test_consumption_follows_a_leader_move(kafka_cluster: EmbeddedCluster) -> None:
    tp = TopicPartition("lm", 0)
    kafka_cluster.state.create_topic("lm", 1, 3)
    await produce(kafka_cluster.bootstrap_servers, "lm", 0, [b"before"])
    c = consumer(kafka_cluster, auto_offset_reset="earliest", metadata_max_age_ms=60_000)
    c.assign([tp])
    async with c:
        assert values_of(await take(c, 1)) == [b"before"]
        leader = kafka_cluster.state.topics["lm"].partitions[0].leader
        kafka_cluster.move_leader("lm", 0, next(n for n in kafka_cluster.nodes if n != leader))
        await produce(kafka_cluster.bootstrap_servers, "lm", 0, [b"after-1", b"after-2"])
        # the old leader answers NOT_LEADER_OR_FOLLOWER; the fetcher refreshes metadata
        assert values_of(await take(c, 2)) == [b"after-1", b"after-2"]
