"""Log truncation detection (KIP-320) against the embedded 3-node cluster, asyncio and trio.

The scenario: the consumer reads a partition to offset 10 in leader epoch 0, then an
unclean election (``broker.faults.unclean_election``) makes another replica the leader
with epoch 1 and a log cut at 6.  New records then land at 6, 7, 8.  A consumer that
validates its position asks the new leader where epoch 0 ends (6) and resumes there;
one that does not would see OFFSET_OUT_OF_RANGE at 10 and re-read from 0 (earliest) or
jump to the end (latest).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from streamclient import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from streamclient.broker import EmbeddedCluster
from streamclient.broker.faults import unclean_election
from streamclient.errors import LogTruncationError, OffsetOutOfRangeError
from streamclient.protocol.messages.offset_for_leader_epoch import OffsetForLeaderEpochRequest

pytestmark = [pytest.mark.anyio, pytest.mark.kafka_cluster(3, partitions=1, replication_factor=3)]

BOUND_S = 20
TOPIC = "kip320"
TP = TopicPartition(TOPIC, 0)


async def produce(cluster: EmbeddedCluster, values: list[bytes]) -> list[int]:
    """One batch per record (so any offset is a batch boundary); returns the offsets.
    A fresh producer each time: after a truncation an old one's sequences would be off."""
    async with AIOKafkaProducer(bootstrap_servers=cluster.bootstrap_servers, linger_ms=0) as p:
        offsets = []
        for value in values:
            offsets.append((await (await p.send(TOPIC, value, partition=0))).offset)
        return offsets


def consumer(cluster: EmbeddedCluster, **kwargs: Any) -> AIOKafkaConsumer:
    if TOPIC not in cluster.state.topics:  # before the consumer's metadata creates it
        cluster.state.create_topic(TOPIC, 1, 3)
    kwargs.setdefault("fetch_max_wait_ms", 100)
    kwargs.setdefault("request_timeout_ms", 5_000)
    kwargs.setdefault("retry_backoff_ms", 20)
    kwargs.setdefault("metadata_max_age_ms", 60_000)
    return AIOKafkaConsumer(bootstrap_servers=cluster.bootstrap_servers, **kwargs)


async def take(c: AIOKafkaConsumer, count: int) -> list[ConsumerRecord[Any, Any]]:
    out: list[ConsumerRecord[Any, Any]] = []
    with anyio.fail_after(BOUND_S):
        while len(out) < count:
            for records in (await c.getmany(TP, timeout_ms=200)).values():
                out.extend(records)
    return out


def other_replica(cluster: EmbeddedCluster) -> int:
    part = cluster.state.topics[TOPIC].partitions[0]
    return next(r for r in part.replicas if r != part.leader)


async def read_past_ten(cluster: EmbeddedCluster, c: AIOKafkaConsumer) -> None:
    assert await produce(cluster, [b"old-%d" % i for i in range(10)]) == list(range(10))
    c.seek(TP, 0)
    records = await take(c, 10)
    assert [r.offset for r in records] == list(range(10))
    assert c._subscription.position(TP) is not None
    assert c._subscription.position(TP).leader_epoch == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("policy", ["earliest", "latest"])
async def test_truncation_resets_to_where_the_logs_diverged(
    kafka_cluster: EmbeddedCluster, policy: str
) -> None:
    validations = kafka_cluster.faults.observe(OffsetForLeaderEpochRequest)
    c = consumer(kafka_cluster, auto_offset_reset=policy)
    c.assign([TP])
    async with c:
        await read_past_ten(kafka_cluster, c)
        unclean_election(kafka_cluster.state, TOPIC, 0, to_node=other_replica(kafka_cluster),
                         truncate_to=6)
        assert await produce(kafka_cluster, [b"new-0", b"new-1", b"new-2"]) == [6, 7, 8]
        records = await take(c, 3)
        # neither the lost records again (earliest) nor a skip past the new ones (latest)
        assert [(r.offset, r.value) for r in records] == [
            (6, b"new-0"), (7, b"new-1"), (8, b"new-2")
        ]
        assert await c.getmany(TP, timeout_ms=300) == {}
        assert await c.position(TP) == 9
    asked = [
        (r.node_id, r.request.replica_id, p.current_leader_epoch, p.leader_epoch)
        for r in validations.requests
        for t in r.request.topics
        for p in t.partitions
    ]
    new_leader = kafka_cluster.state.topics[TOPIC].partitions[0].leader
    assert (new_leader, -1, 1, 0) in asked
    assert all(version >= 3 for version in (r.api_version for r in validations.requests))


async def test_truncation_with_policy_none_raises_until_the_application_seeks(
    kafka_cluster: EmbeddedCluster,
) -> None:
    c = consumer(kafka_cluster, auto_offset_reset="none")
    c.assign([TP])
    async with c:
        await read_past_ten(kafka_cluster, c)
        unclean_election(kafka_cluster.state, TOPIC, 0, to_node=other_replica(kafka_cluster),
                         truncate_to=6)
        await produce(kafka_cluster, [b"new-0", b"new-1"])
        with anyio.fail_after(BOUND_S):
            with pytest.raises(LogTruncationError) as raised:
                while True:
                    await c.getmany(TP, timeout_ms=200)
        error = raised.value
        assert isinstance(error, OffsetOutOfRangeError)
        assert error.fetch_offsets == {TP: 10} and error.divergent_offsets == {TP: 6}
        assert "kip320" in str(error) and "diverged at 6" in str(error)
        # nothing is read meanwhile, and the next polls raise it again (as Java's do)
        with anyio.fail_after(BOUND_S):
            with pytest.raises(LogTruncationError):
                while True:
                    assert await c.getmany(TP, timeout_ms=200) == {}
        c.seek(TP, error.divergent_offsets[TP])
        records = await take(c, 2)
        assert [(r.offset, r.value) for r in records] == [(6, b"new-0"), (7, b"new-1")]


async def test_a_leader_move_without_truncation_validates_and_loses_nothing(
    kafka_cluster: EmbeddedCluster,
) -> None:
    validations = kafka_cluster.faults.observe(OffsetForLeaderEpochRequest)
    c = consumer(kafka_cluster, auto_offset_reset="none")
    c.assign([TP])
    async with c:
        await read_past_ten(kafka_cluster, c)
        kafka_cluster.move_leader(TOPIC, 0, other_replica(kafka_cluster))
        assert await produce(kafka_cluster, [b"after-%d" % i for i in range(5)]) == [
            10, 11, 12, 13, 14
        ]
        records = await take(c, 5)
        assert [r.offset for r in records] == [10, 11, 12, 13, 14]
        assert await c.getmany(TP, timeout_ms=300) == {}
        assert c._subscription.position(TP).leader_epoch == 1  # type: ignore[union-attr]
    assert [p.leader_epoch for r in validations.requests for t in r.request.topics
            for p in t.partitions] == [0]


async def test_a_committed_offset_is_validated_with_its_epoch(
    kafka_cluster: EmbeddedCluster,
) -> None:
    first = consumer(kafka_cluster, group_id="g320", enable_auto_commit=False)
    first.assign([TP])
    async with first:
        await read_past_ten(kafka_cluster, first)
        await first.commit()  # offset 10, committed leader epoch 0
    unclean_election(kafka_cluster.state, TOPIC, 0, to_node=other_replica(kafka_cluster),
                     truncate_to=6)
    await produce(kafka_cluster, [b"new-0"])
    validations = kafka_cluster.faults.observe(OffsetForLeaderEpochRequest)
    second = consumer(kafka_cluster, group_id="g320", auto_offset_reset="earliest")
    second.assign([TP])
    async with second:
        records = await take(second, 1)
        assert [(r.offset, r.value) for r in records] == [(6, b"new-0")]
    assert [(p.current_leader_epoch, p.leader_epoch) for r in validations.requests
            for t in r.request.topics for p in t.partitions] == [(1, 0)]
