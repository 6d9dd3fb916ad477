"""Produce and Fetch over real sockets against an EmbeddedCluster: raw generated
requests, framed by hand, at several versions."""

from __future__ import annotations

import struct
from typing import Any

import anyio
import anyio.abc
import pytest

from streamclient.broker import EmbeddedCluster
from streamclient.protocol.framing import decode_response, encode_request
from streamclient.protocol.messages import FetchRequest, ProduceRequest
from streamclient.protocol.records import RecordBatchBuilder, build_control_batch, iter_batches

TOPIC = "wire"


class RawConnection:
    """One socket, one request at a time: just enough client to talk to the broker."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.correlation_id = 0
        self.buffer = bytearray()

    async def send(self, request: Any, version: int) -> None:
        self.correlation_id += 1
        await self.stream.send(encode_request(request, version, self.correlation_id, "raw"))

    async def receive(self, request_type: type, version: int) -> Any:
        while True:
            if len(self.buffer) >= 4:
                (size,) = struct.unpack_from(">i", self.buffer, 0)
                if len(self.buffer) >= 4 + size:
                    frame = bytes(self.buffer[4:4 + size])
                    del self.buffer[:4 + size]
                    correlation_id, response = decode_response(frame, request_type, version)
                    assert correlation_id == self.correlation_id
                    return response
            self.buffer += await self.stream.receive()

    async def __aenter__(self) -> RawConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stream.aclose()

    async def request(self, request: Any, version: int) -> Any:
        await self.send(request, version)
        return await self.receive(type(request), version)


async def connect(cluster: EmbeddedCluster, node_id: int) -> RawConnection:
    host, port = cluster.address(node_id)
    return RawConnection(await anyio.connect_tcp(host, port))


def batch(n: int = 1, *, value: bytes = b"value", transactional: bool = False, pid: int = -1,
          epoch: int = -1, seq: int = -1) -> bytes:
    builder = RecordBatchBuilder(is_transactional=transactional, producer_id=pid,
                                 producer_epoch=epoch, base_sequence=seq)
    for i in range(n):
        builder.append(1_700_000_000_000 + i, b"key", value, [])
    return builder.build()


def produce_request(records: bytes, *, acks: int = -1, partition: int = 0) -> ProduceRequest:
    return ProduceRequest(acks=acks, timeout_ms=5000, topic_data=[
        ProduceRequest.TopicProduceData(name=TOPIC, partition_data=[
            ProduceRequest.TopicProduceData.PartitionProduceData(index=partition,
                                                                  records=records)])])


def fetch_request(cluster: EmbeddedCluster, offset: int, version: int, *, max_wait_ms: int = 0,
                  isolation_level: int = 0, partition_max_bytes: int = 1 << 20) -> FetchRequest:
    topic = FetchRequest.FetchTopic(partitions=[FetchRequest.FetchTopic.FetchPartition(
        partition=0, fetch_offset=offset, partition_max_bytes=partition_max_bytes)])
    if version >= 13:
        topic.topic_id = cluster.state.topics[TOPIC].topic_id
    else:
        topic.topic = TOPIC
    return FetchRequest(max_wait_ms=max_wait_ms, min_bytes=1, max_bytes=1 << 20,
                        isolation_level=isolation_level, topics=[topic])


def offsets_in(records: Any) -> list[int]:
    return [r.offset for b in iter_batches(bytes(records or b"")) for r in b]


def leader(cluster: EmbeddedCluster) -> int:
    node = cluster.state.partition_leader(TOPIC, 0)
    assert node is not None
    return node


@pytest.mark.anyio
@pytest.mark.parametrize(("produce_v", "fetch_v"), [(3, 4), (8, 11), (9, 12), (11, 16), (11, 17)])
async def test_produce_then_fetch_over_the_wire(produce_v: int, fetch_v: int) -> None:
    async with EmbeddedCluster(3) as cluster:
        cluster.state.create_topic(TOPIC, 1, 3)
        async with await connect(cluster, leader(cluster)) as conn:
            offsets = []
            for n in (3, 2):
                resp = await conn.request(produce_request(batch(n)), produce_v)
                part = resp.responses[0].partition_responses[0]
                assert part.error_code == 0
                offsets.append(part.base_offset)
            assert offsets == [0, 3]
            fetched = await conn.request(fetch_request(cluster, 0, fetch_v), fetch_v)
            data = fetched.responses[0].partitions[0]
            assert (data.error_code, data.high_watermark) == (0, 5)
            assert offsets_in(data.records) == [0, 1, 2, 3, 4]
            assert cluster.errors == []


@pytest.mark.anyio
async def test_acks_zero_sends_no_response() -> None:
    async with EmbeddedCluster(1) as cluster:
        cluster.state.create_topic(TOPIC, 1, 1)
        async with await connect(cluster, leader(cluster)) as conn:
            await conn.send(produce_request(batch(), acks=0), 9)
            # the next response on the connection belongs to the next request
            resp = await conn.request(produce_request(batch(), acks=1), 9)
            assert resp.responses[0].partition_responses[0].base_offset == 1


@pytest.mark.anyio
async def test_long_poll_fetch_wakes_when_another_connection_produces() -> None:
    async with EmbeddedCluster(3) as cluster:
        cluster.state.create_topic(TOPIC, 1, 3)
        node = leader(cluster)
        result: list[Any] = []
        async with await connect(cluster, node) as consumer, \
                await connect(cluster, node) as producer:

            async def poll() -> None:
                request = fetch_request(cluster, 0, 12, max_wait_ms=30_000)
                result.append(await consumer.request(request, 12))

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(poll)
                    await anyio.wait_all_tasks_blocked()
                    await producer.request(produce_request(batch(2)), 9)
        assert offsets_in(result[0].responses[0].partitions[0].records) == [0, 1]


@pytest.mark.anyio
async def test_first_batch_rule_over_the_wire() -> None:
    async with EmbeddedCluster(1) as cluster:
        cluster.state.create_topic(TOPIC, 1, 1)
        async with await connect(cluster, leader(cluster)) as conn:
            for _ in range(2):
                await conn.request(produce_request(batch(value=b"x" * 1000)), 9)
            resp = await conn.request(fetch_request(cluster, 0, 12, partition_max_bytes=100), 12)
            assert offsets_in(resp.responses[0].partitions[0].records) == [0]


@pytest.mark.anyio
async def test_read_committed_over_the_wire() -> None:
    async with EmbeddedCluster(1) as cluster:
        cluster.state.create_topic(TOPIC, 1, 1)
        async with await connect(cluster, leader(cluster)) as conn:
            log = cluster.state.partition_log(TOPIC, 0)
            assert log is not None
            await conn.request(produce_request(batch(1)), 9)  # 0
            # a transaction the coordinator aborts: data from the producer, marker from the log
            now = cluster.state.clock.now_ms()
            log.append(batch(2, transactional=True, pid=9, epoch=0, seq=0), now_ms=now)  # 1-2
            log.append_control(9, 0, commit=False, coordinator_epoch=0, now_ms=now)  # 3
            await conn.request(produce_request(batch(1)), 9)  # 4
            resp = await conn.request(fetch_request(cluster, 0, 12, isolation_level=1), 12)
            data = resp.responses[0].partitions[0]
            assert data.last_stable_offset == 5
            assert [(a.producer_id, a.first_offset) for a in data.aborted_transactions] == [(9, 1)]
            batches = list(iter_batches(bytes(data.records)))
            assert [b.base_offset for b in batches if b.is_control] == [3]
            # the marker bytes are the records module's own control batch, offsets stamped
            marker = next(b for b in batches if b.is_control)
            rebuilt = build_control_batch(0, producer_id=9, producer_epoch=0, coordinator_epoch=0,
                                          timestamp_ms=now, base_offset=3,
                                          partition_leader_epoch=marker.partition_leader_epoch)
            assert bytes(marker.data) == rebuilt
