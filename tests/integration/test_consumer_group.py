"""AIOKafkaConsumer in consumer groups against the embedded broker (asyncio and trio):
three members joining, leaving and crashing over six partitions (cooperative-sticky and
range), static membership, the poll timeout, listeners and commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import pytest

from streamclient import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from streamclient.broker import EmbeddedCluster
from streamclient.cluster import ClusterClient
from streamclient.consumer.assignors import (
    CooperativeStickyAssignor,
    RangePartitionAssignor,
)
from streamclient.errors import IllegalStateError
from streamclient.protocol.messages.leave_group import LeaveGroupRequest
from streamclient.protocol.messages.produce import ProduceRequest
from streamclient.protocol.records import RecordBatchBuilder

pytestmark = pytest.mark.anyio

BOUND_S = 40
SESSION_MS = 1_500
# the broker refuses sessions below its minimum (6 s by default): lower it for speed
FAST_GROUPS = {"group_min_session_timeout_ms": 500}


async def produce_round(bootstrap: str, topic: str, partitions: int, start: int, per: int) -> set[str]:
    """``per`` records to each partition, values ``"<partition>-<n>"``; returns them."""
    values: set[str] = set()
    async with ClusterClient(bootstrap_servers=bootstrap) as client:
        await client.wait_for_topic(topic, 5_000)
        for p in range(partitions):
            builder = RecordBatchBuilder()
            for n in range(start, start + per):
                value = f"{p}-{n}"
                values.add(value)
                builder.append(1_700_000_000_000 + n, None, value.encode(), ())
            data = ProduceRequest.TopicProduceData(
                name=topic,
                partition_data=[
                    ProduceRequest.TopicProduceData.PartitionProduceData(
                        index=p, records=builder.build()
                    )
                ],
            )
            response = await client.send_to_leader(
                TopicPartition(topic, p),
                ProduceRequest(acks=-1, timeout_ms=5_000, topic_data=[data]),
            )
            assert response.responses[0].partition_responses[0].error_code == 0
    return values


class RecordingListener(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, frozenset[TopicPartition]]] = []

    async def on_partitions_revoked(self, revoked: Any) -> None:  # a coroutine listener
        self.events.append(("revoked", frozenset(revoked)))

    def on_partitions_assigned(self, assigned: Any) -> None:  # a plain one
        self.events.append(("assigned", frozenset(assigned)))

    def on_partitions_lost(self, lost: Any) -> None:
        self.events.append(("lost", frozenset(lost)))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


@dataclass
class Member:
    name: str
    listener: RecordingListener = field(default_factory=RecordingListener)
    consumed: list[tuple[TopicPartition, int, str]] = field(default_factory=list)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    stop: anyio.Event = field(default_factory=anyio.Event)
    joined: anyio.Event = field(default_factory=anyio.Event)
    consumer: AIOKafkaConsumer | None = None

    async def run(self, cluster: EmbeddedCluster, topic: str, group: str,
                  strategy: Sequence[Any], **kwargs: Any) -> None:
        kwargs.setdefault("enable_auto_commit", True)
        kwargs.setdefault("auto_commit_interval_ms", 100)
        c = AIOKafkaConsumer(
            bootstrap_servers=cluster.bootstrap_servers,
            group_id=group,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_MS,
            heartbeat_interval_ms=200,
            fetch_max_wait_ms=100,
            request_timeout_ms=5_000,
            retry_backoff_ms=50,
            partition_assignment_strategy=strategy,
            **kwargs,
        )
        self.consumer = c
        c.subscribe([topic], listener=self.listener)
        with self.scope:
            async with c:
                self.joined.set()
                while not self.stop.is_set():
                    batch = await c.getmany(timeout_ms=50)
                    for tp, records in batch.items():
                        self.consumed.extend((tp, r.offset, r.value.decode()) for r in records)

    def assignment(self) -> set[TopicPartition]:
        assert self.consumer is not None
        return self.consumer.assignment()


async def wait_until(predicate: Any, what: str) -> None:
    with anyio.fail_after(BOUND_S):
        while not predicate():
            await anyio.sleep(0.05)
    assert predicate(), what


async def committed_offsets(cluster: EmbeddedCluster, group: str, topic: str,
                            partitions: int) -> dict[TopicPartition, int | None]:
    probe = AIOKafkaConsumer(bootstrap_servers=cluster.bootstrap_servers, group_id=group,
                             enable_auto_commit=False, request_timeout_ms=5_000)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    probe.assign(tps)
    async with probe:
        return {tp: await probe.committed(tp) for tp in tps}


@pytest.mark.kafka_cluster(partitions=6, **FAST_GROUPS)
@pytest.mark.parametrize("strategy", [CooperativeStickyAssignor, RangePartitionAssignor],
                         ids=["cooperative-sticky", "range"])
async def test_three_members_join_leave_and_crash(kafka_cluster: EmbeddedCluster,
                                                  strategy: Any) -> None:
    topic, group, parts = "orders", f"g-{strategy.name}", 6
    kafka_cluster.state.create_topic(topic, parts)
    bootstrap = kafka_cluster.bootstrap_servers
    leaves = kafka_cluster.faults.observe(LeaveGroupRequest)
    produced = await produce_round(bootstrap, topic, parts, 0, 40)
    a, b, c = Member("a"), Member("b"), Member("c")
    all_tps = {TopicPartition(topic, p) for p in range(parts)}

    def seen() -> set[str]:
        return {v for m in (a, b, c) for _, _, v in m.consumed}

    async with anyio.create_task_group() as tg:
        tg.start_soon(a.run, kafka_cluster, topic, group, [strategy])
        await wait_until(lambda: a.joined.is_set() and a.assignment() == all_tps, "a owns all")
        tg.start_soon(b.run, kafka_cluster, topic, group, [strategy])
        tg.start_soon(c.run, kafka_cluster, topic, group, [strategy])
        # balanced: every member holds two partitions, none twice
        await wait_until(
            lambda: all(m.consumer is not None and len(m.assignment()) == 2 for m in (a, b, c)),
            "2-2-2 assignment",
        )
        assert a.assignment() | b.assignment() | c.assignment() == all_tps
        produced |= await produce_round(bootstrap, topic, parts, 40, 40)
        await wait_until(lambda: produced <= seen(), "all records so far consumed")

        # b leaves cleanly: its partitions move to a and c, nothing is redelivered
        b.stop.set()
        await wait_until(lambda: a.assignment() | c.assignment() == all_tps, "b's moved")
        assert len(leaves.requests) >= 1

        # c crashes: its task is cancelled without stop(); the session timeout frees it
        await anyio.sleep(0.3)  # let c auto-commit what it has consumed
        c_tps = c.assignment()
        c.scope.cancel()
        await wait_until(lambda: c.scope.cancel_called and a.assignment() == all_tps,
                         "a owns all after the crash")
        produced |= await produce_round(bootstrap, topic, parts, 80, 40)
        await wait_until(lambda: produced <= seen(), "every record consumed")
        a.stop.set()

    assert c_tps
    # exactly what was produced, nothing else
    assert seen() == produced
    # redelivery only after the crash, only of c's records, and never below what c
    # committed: everything else was consumed exactly once
    counts: dict[tuple[TopicPartition, int], int] = {}
    for m in (a, b, c):
        for tp, offset, _ in m.consumed:
            counts[(tp, offset)] = counts.get((tp, offset), 0) + 1
    duplicates = {key for key, n in counts.items() if n > 1}
    c_consumed = {(tp, offset) for tp, offset, _ in c.consumed}
    assert duplicates <= c_consumed
    assert all(tp in c_tps for tp, _ in duplicates)
    # listeners: everyone was assigned something; b's revocation on leaving included
    # what it held; the crash ran no listener of c's (it had no chance to)
    for m in (a, b, c):
        assert any(kind == "assigned" and tps for kind, tps in m.listener.events), m.name
    assert b.listener.events[-1][0] == "revoked" and b.listener.events[-1][1]
    assert c.listener.events[-1][0] == "assigned"
    if strategy is CooperativeStickyAssignor:
        # a kept its partitions through every rebalance: nothing of a's was revoked
        # until a left (incremental, KIP-429)
        revoked_a = [tps for kind, tps in a.listener.events[:-1] if kind == "revoked"]
        assert all(tps for tps in revoked_a)
    else:
        # eager: every rebalance revokes everything first
        assert a.listener.kinds()[:3] == ["assigned", "revoked", "assigned"]


@pytest.mark.kafka_cluster(partitions=4, **FAST_GROUPS)
async def test_redelivery_after_crash_starts_at_the_commit(kafka_cluster: EmbeddedCluster) -> None:
    topic, group, parts = "crash", "g-crash", 4
    kafka_cluster.state.create_topic(topic, parts)
    produced = await produce_round(kafka_cluster.bootstrap_servers, topic, parts, 0, 25)
    victim = Member("victim")
    async with anyio.create_task_group() as tg:
        # no auto-commit: the victim commits offset 10 of each partition by hand
        tg.start_soon(partial(victim.run, kafka_cluster, topic, group, [RangePartitionAssignor],
                              enable_auto_commit=False))
        await wait_until(lambda: len(victim.consumed) == len(produced), "victim read all")
        assert victim.consumer is not None
        await victim.consumer.commit({TopicPartition(topic, p): 10 for p in range(parts)})
        victim.scope.cancel()  # a crash: no stop(), no commit of the rest, no LeaveGroup
    committed = await committed_offsets(kafka_cluster, group, topic, parts)
    assert set(committed.values()) == {10}
    survivor = Member("survivor")
    async with anyio.create_task_group() as tg:
        tg.start_soon(survivor.run, kafka_cluster, topic, group, [RangePartitionAssignor])
        await wait_until(lambda: len(survivor.consumed) >= sum(
            25 - (committed[TopicPartition(topic, p)] or 0) for p in range(parts)),
            "survivor read the uncommitted tail")
        survivor.stop.set()
    for tp, offset, _ in survivor.consumed:
        assert offset >= (committed[tp] or 0)
    assert {v for _, _, v in victim.consumed} | {v for _, _, v in survivor.consumed} == produced


@pytest.mark.kafka_cluster(partitions=2, **FAST_GROUPS)
async def test_static_member_sends_no_leave_group(kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.state.create_topic("st", 2)
    leaves = kafka_cluster.faults.observe(LeaveGroupRequest)
    static = Member("static")
    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(static.run, kafka_cluster, "st", "g-static",
                              [RangePartitionAssignor], group_instance_id="instance-1"))
        await wait_until(lambda: static.joined.is_set(), "joined")
        assert static.consumer is not None
        meta = static.consumer.group_metadata()
        assert meta.group_id == "g-static" and meta.group_instance_id == "instance-1"
        assert meta.generation_id >= 1 and meta.member_id
        static.stop.set()
    assert leaves.requests == []
    dynamic = Member("dynamic")
    async with anyio.create_task_group() as tg:
        tg.start_soon(dynamic.run, kafka_cluster, "st", "g-dynamic", [RangePartitionAssignor])
        await wait_until(lambda: dynamic.joined.is_set(), "joined")
        dynamic.stop.set()
    assert len(leaves.requests) == 1


@pytest.mark.kafka_cluster(partitions=2, **FAST_GROUPS)
async def test_a_member_that_stops_polling_leaves(kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.state.create_topic("mp", 2)
    common: dict[str, Any] = {
        "bootstrap_servers": kafka_cluster.bootstrap_servers, "group_id": "g-poll",
        "session_timeout_ms": SESSION_MS, "heartbeat_interval_ms": 200,
        "max_poll_interval_ms": 800, "partition_assignment_strategy": [RangePartitionAssignor],
        "fetch_max_wait_ms": 100, "request_timeout_ms": 5_000,
    }
    lazy = AIOKafkaConsumer("mp", **common)
    busy = Member("busy")
    with anyio.fail_after(BOUND_S):
        async with lazy:
            assert lazy.assignment() == {TopicPartition("mp", 0), TopicPartition("mp", 1)}
            async with anyio.create_task_group() as tg:
                tg.start_soon(partial(busy.run, kafka_cluster, "mp", "g-poll",
                                      [RangePartitionAssignor], max_poll_interval_ms=800))
                # lazy never polls: it leaves after max_poll_interval_ms and busy gets all
                await wait_until(lambda: busy.consumer is not None and len(busy.assignment()) == 2,
                                 "busy owns both")
                assert lazy.assignment() == set()
                # polling again rejoins
                while not lazy.assignment():
                    await lazy.getmany(timeout_ms=100)
                await wait_until(lambda: len(busy.assignment()) == 1, "rebalanced again")
                busy.stop.set()


@pytest.mark.kafka_cluster(partitions=2)
async def test_commit_apis_with_manual_assignment(kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.state.create_topic("cm", 2)
    await produce_round(kafka_cluster.bootstrap_servers, "cm", 2, 0, 5)
    tp0, tp1 = TopicPartition("cm", 0), TopicPartition("cm", 1)
    c = AIOKafkaConsumer(bootstrap_servers=kafka_cluster.bootstrap_servers, group_id="g-cm",
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         fetch_max_wait_ms=100, request_timeout_ms=5_000)
    with pytest.raises(IllegalStateError):
        await AIOKafkaConsumer(group_id="x").commit()
    c.assign([tp0, tp1])
    with anyio.fail_after(BOUND_S):
        async with c:
            assert await c.committed(tp0) is None
            got = 0
            while got < 10:
                got += sum(len(v) for v in (await c.getmany(timeout_ms=100)).values())
            await c.commit()
            assert await c.committed(tp0) == 5
            await c.commit({tp1: (2, "meta")})
            assert await c.committed(tp1) == 2
            with pytest.raises(IllegalStateError):
                await c.commit({TopicPartition("cm", 7): 1})
            with pytest.raises(ValueError):
                await c.commit({tp0: "x"})  # type: ignore[dict-item]
            assert await c.seek_to_committed() == {tp0: 5, tp1: 2}
            assert await c.position(tp1) == 2
            records = await c.getmany(tp1, timeout_ms=2_000)
            assert [r.offset for r in records[tp1]] == [2, 3, 4]
            assert c.group_metadata().generation_id == -1
    # a new consumer of the group starts at the committed offsets
    again = AIOKafkaConsumer(bootstrap_servers=kafka_cluster.bootstrap_servers, group_id="g-cm",
                             enable_auto_commit=False, request_timeout_ms=5_000)
    again.assign([tp0, tp1])
    async with again:
        assert await again.position(tp0) == 5
        assert await again.position(tp1) == 2


class FailingListener(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.calls = 0

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.calls += 1
        raise RuntimeError("revoked listener failure")

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.calls += 1
        raise RuntimeError("assigned listener failure")


@pytest.mark.kafka_cluster(partitions=2, **FAST_GROUPS)
async def test_pattern_subscription_and_a_failing_listener(
    kafka_cluster: EmbeddedCluster, caplog: pytest.LogCaptureFixture
) -> None:
    for topic in ("pat-a", "pat-b", "other"):
        kafka_cluster.state.create_topic(topic, 2)
    values = await produce_round(kafka_cluster.bootstrap_servers, "pat-a", 2, 0, 3)
    values |= await produce_round(kafka_cluster.bootstrap_servers, "pat-b", 2, 0, 3)
    await produce_round(kafka_cluster.bootstrap_servers, "other", 2, 100, 3)
    listener = FailingListener()
    c = AIOKafkaConsumer(bootstrap_servers=kafka_cluster.bootstrap_servers, group_id="g-pat",
                         auto_offset_reset="earliest", session_timeout_ms=SESSION_MS,
                         heartbeat_interval_ms=200, fetch_max_wait_ms=100,
                         request_timeout_ms=5_000)
    c.subscribe(pattern="^pat-", listener=listener)
    seen: set[str] = set()
    with anyio.fail_after(BOUND_S):
        async with c:
            while {tp.topic for tp in c.assignment()} != {"pat-a", "pat-b"}:
                await c.getmany(timeout_ms=50)
            assert c.subscription() == frozenset({"pat-a", "pat-b"})
            while not values <= seen:
                for records in (await c.getmany(timeout_ms=100)).values():
                    seen.update(r.value.decode() for r in records)
    assert seen == values  # nothing of "other"
    assert listener.calls >= 2  # assigned, then revoked on stop: both failed, both logged
    assert "assigned listener failure" in caplog.text
