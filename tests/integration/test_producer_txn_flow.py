"""The transactional AIOKafkaProducer against the embedded broker.

The log is read raw: data batches and the COMMIT/ABORT markers the coordinator wrote
after them, so these tests check what reached the broker, not what a consumer filters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from streamclient import AIOKafkaProducer, IllegalOperation, TopicPartition
from streamclient.broker import EmbeddedCluster
from streamclient.cluster import ClusterClient, ConnectionGroup, CoordinatorType
from streamclient.errors import IllegalStateError, ProducerFenced
from streamclient.protocol.messages.fetch import FetchRequest
from streamclient.protocol.messages.offset_fetch import OffsetFetchRequest
from streamclient.protocol.records import ControlRecord, ControlRecordType, iter_batches

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def transaction_outcomes(bootstrap: str, topic: str) -> tuple[list[bytes], list[bytes]]:
    """(committed values, aborted values) of partition 0, from the markers in the log."""
    committed: list[bytes] = []
    aborted: list[bytes] = []
    pending: dict[int, list[bytes]] = {}
    async with ClusterClient(bootstrap_servers=bootstrap) as client:
        tp = TopicPartition(topic, 0)
        leader = await client.leader(tp)
        version = min(await client.version_for(leader, FetchRequest), 12)
        offset = 0
        while True:
            request = FetchRequest(
                replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=8 << 20,
                isolation_level=0,
                topics=[FetchRequest.FetchTopic(topic=topic, partitions=[
                    FetchRequest.FetchTopic.FetchPartition(
                        partition=0, fetch_offset=offset, partition_max_bytes=8 << 20)])])
            part = (await client.send(leader, request, version)).responses[0].partitions[0]
            assert part.error_code == 0
            for batch in iter_batches(bytes(part.records or b"")):
                offset = max(offset, batch.next_offset)
                if batch.is_control:
                    marker = ControlRecord.from_batch(batch).type
                    values = pending.pop(batch.producer_id, [])
                    (committed if marker == ControlRecordType.COMMIT else aborted).extend(values)
                else:
                    assert batch.is_transactional
                    pending.setdefault(batch.producer_id, []).extend(
                        bytes(r.value) for r in batch)
            if offset >= part.high_watermark:
                break
    assert not pending, "a transaction was left open"
    return committed, aborted


async def committed_offset(bootstrap: str, group: str, tp: TopicPartition) -> int:
    async with ClusterClient(bootstrap_servers=bootstrap) as client:
        node = await client.coordinator(group, CoordinatorType.GROUP)
        version = min(await client.version_for(node, OffsetFetchRequest), 7)
        request = OffsetFetchRequest(group_id=group, topics=[
            OffsetFetchRequest.OffsetFetchRequestTopic(name=tp.topic,
                                                       partition_indexes=[tp.partition])],
            require_stable=version >= 7)
        response = await client.send(node, request, version, group=ConnectionGroup.COORDINATION)
        [topic] = response.topics
        [part] = topic.partitions
        assert part.error_code == 0
        return int(part.committed_offset)


def txn_producer(bootstrap: str, txn_id: str, **kwargs: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=txn_id,
                            transaction_timeout_ms=10_000, **kwargs)


async def test_commit_abort_and_the_context_manager(kafka_cluster: EmbeddedCluster) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    async with txn_producer(bootstrap, "txn-basic") as producer:
        await producer.begin_transaction()
        first = [await producer.send("txn", f"c1-{i}".encode(), partition=0) for i in range(50)]
        await producer.commit_transaction()
        assert all(f.done() and f.exception() is None for f in first)

        await producer.begin_transaction()
        written = [await producer.send("txn", f"a1-{i}".encode(), partition=0)
                   for i in range(30)]
        await written[-1]  # these reach the log, then the abort marks them
        await producer.abort_transaction()

        await producer.begin_transaction()
        dropped = [await producer.send("txn", f"never-{i}".encode(), partition=0)
                   for i in range(10)]
        await producer.abort_transaction()  # nothing of these was sent yet
        assert all(f.done() and f.exception() is not None for f in dropped)

        async with producer.transaction():
            for i in range(20):
                await producer.send("txn", f"c2-{i}".encode(), partition=0)

        with pytest.raises(RuntimeError, match="boom"):
            async with producer.transaction():
                await producer.send_and_wait("txn", b"a2-0", partition=0)
                raise RuntimeError("boom")

        # a transaction that sent nothing commits without a round trip to anyone
        async with producer.transaction():
            pass
    committed, aborted = await transaction_outcomes(bootstrap, "txn")
    assert committed == [f"c1-{i}".encode() for i in range(50)] + [
        f"c2-{i}".encode() for i in range(20)]
    assert sorted(aborted) == sorted([f"a1-{i}".encode() for i in range(30)] + [b"a2-0"])


async def test_transaction_state_errors(kafka_cluster: EmbeddedCluster) -> None:
    async with txn_producer(kafka_cluster.bootstrap_servers, "txn-errors") as producer:
        with pytest.raises(IllegalOperation, match="not in transaction"):
            await producer.send("txn-e", b"x")
        with pytest.raises(IllegalOperation, match="transaction"):
            await producer.send_offsets_to_transaction({TopicPartition("txn-e", 0): 1}, "g")
        with pytest.raises(IllegalStateError):
            await producer.commit_transaction()
        await producer.begin_transaction()
        with pytest.raises(IllegalStateError):
            await producer.begin_transaction()
        await producer.send_and_wait("txn-e", b"ok")
        await producer.commit_transaction()


async def test_send_offsets_to_transaction(kafka_cluster: EmbeddedCluster) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    tp = TopicPartition("txn-offsets-in", 0)

    @dataclass
    class GroupMetadata:  # what a consumer's group_metadata() looks like (KIP-447)
        group_id: str
        generation_id: int = -1
        member_id: str = ""
        group_instance_id: str | None = None

    async with txn_producer(bootstrap, "txn-offsets") as producer:
        await producer.partitions_for(tp.topic)  # offsets of unknown topics are refused
        async with producer.transaction():
            await producer.send("txn-offsets-out", b"result", partition=0)
            await producer.send_offsets_to_transaction({tp: 42}, "group-a")
        assert await committed_offset(bootstrap, "group-a", tp) == 42

        # aborted: the commit of offsets is dropped with the records
        await producer.begin_transaction()
        await producer.send_offsets_to_transaction({tp: (77, "meta")}, "group-a")
        await producer.abort_transaction()
        assert await committed_offset(bootstrap, "group-a", tp) == 42

        async with producer.transaction():
            await producer.send_offsets_to_transaction({tp: 99}, GroupMetadata("group-b"))
        assert await committed_offset(bootstrap, "group-b", tp) == 99


async def test_a_newer_producer_fences_the_older_one(kafka_cluster: EmbeddedCluster) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    async with txn_producer(bootstrap, "txn-zombie") as old:
        await old.begin_transaction()
        await old.send_and_wait("txn-z", b"old", partition=0)
        async with txn_producer(bootstrap, "txn-zombie") as new:
            # initialising the same transactional id aborts the old transaction and
            # bumps the epoch: the old producer is now a zombie
            async with new.transaction():
                await new.send("txn-z", b"new", partition=0)
            with anyio.fail_after(10), pytest.raises(ProducerFenced):
                await old.commit_transaction()
        assert old.has_fatal_error
    committed, aborted = await transaction_outcomes(bootstrap, "txn-z")
    assert (committed, aborted) == ([b"new"], [b"old"])
