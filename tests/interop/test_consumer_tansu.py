"""AIOKafkaConsumer against Tansu (an independent broker), asyncio and trio: 100 000
records consumed through a consumer group, and the committed offsets equal the positions.

Tansu holds a JoinGroup for half the session timeout, so the session is kept at 6 s."""

from __future__ import annotations

import anyio
import pytest

from streamclient import AIOKafkaConsumer, TopicPartition
from streamclient.cluster import ClusterClient
from streamclient.consumer.assignors import RangePartitionAssignor
from streamclient.protocol.messages.create_topics import CreateTopicsRequest
from streamclient.protocol.messages.produce import ProduceRequest
from streamclient.protocol.records import RecordBatchBuilder

pytestmark = pytest.mark.anyio

RECORDS = 100_000
PARTITIONS = 4
PER_BATCH = 5_000
BOUND_S = 90


async def _create_and_fill(bootstrap: str, topic: str) -> None:
    async with ClusterClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000) as client:
        request = CreateTopicsRequest(timeout_ms=10_000, topics=[
            CreateTopicsRequest.CreatableTopic(name=topic, num_partitions=PARTITIONS,
                                               replication_factor=1)])
        response = await client.send_to_any(request)
        assert [t.error_code for t in response.topics] == [0]
        await client.wait_for_topic(topic, 10_000)
        n = 0
        while n < RECORDS:
            partition = (n // PER_BATCH) % PARTITIONS
            builder = RecordBatchBuilder(batch_size=1 << 22)
            for i in range(n, n + PER_BATCH):
                assert builder.append(1_700_000_000_000, None, b"%08d" % i, ()) is not None
            data = ProduceRequest.TopicProduceData(name=topic, partition_data=[
                ProduceRequest.TopicProduceData.PartitionProduceData(
                    index=partition, records=builder.build())])
            result = await client.send_to_leader(
                TopicPartition(topic, partition),
                ProduceRequest(acks=-1, timeout_ms=10_000, topic_data=[data]))
            assert result.responses[0].partition_responses[0].error_code == 0
            n += PER_BATCH


async def test_group_consumes_100k_records_and_commits_positions(
    tansu_bootstrap: str, topic_name: str
) -> None:
    await _create_and_fill(tansu_bootstrap, topic_name)
    consumer = AIOKafkaConsumer(
        topic_name,
        bootstrap_servers=tansu_bootstrap,
        group_id=f"group-{topic_name}",
        partition_assignment_strategy=[RangePartitionAssignor],
        session_timeout_ms=6_000,
        heartbeat_interval_ms=1_000,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=200,
        request_timeout_ms=15_000,
    )
    seen: set[bytes] = set()
    count = 0
    tps = [TopicPartition(topic_name, p) for p in range(PARTITIONS)]
    with anyio.fail_after(BOUND_S):
        async with consumer:
            assert consumer.assignment() == set(tps)
            while count < RECORDS:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    count += len(records)
                    seen.update(r.value for r in records)
            await consumer.commit()
            positions = {tp: await consumer.position(tp) for tp in tps}
            committed = {tp: await consumer.committed(tp) for tp in tps}
    assert count == RECORDS and len(seen) == RECORDS
    assert sum(positions.values()) == RECORDS
    assert committed == positions
