"""The data-path handlers against a real ClusterState, with every request and response
going through the generated codecs at the version under test (no sockets here; the
socket-level tests are in test_produce_fetch_server.py)."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest

from streamclient.broker.config import BrokerConfig
from streamclient.broker.handlers import (
    delete_records,
    describe_producers,
    fetch,
    list_offsets,
    offset_for_leader_epoch,
    produce,
)
from streamclient.broker.handlers.registry import RequestContext
from streamclient.broker.log import LogManager
from streamclient.broker.state import ClusterState, ManualClock
from streamclient.protocol.messages import (
    DeleteRecordsRequest,
    DescribeProducersRequest,
    FetchRequest,
    ListOffsetsRequest,
    OffsetForLeaderEpochRequest,
    ProduceRequest,
)
from streamclient.protocol.messages.request_header import RequestHeader
from streamclient.protocol.records import RecordBatchBuilder, iter_batches

NOW = 1_700_000_000_000
TOPIC = "t"


def make_state(**config: Any) -> ClusterState:
    state = ClusterState(BrokerConfig(**config), clock=ManualClock(NOW))
    state.logs = LogManager(state)
    for node in (1, 2, 3):
        state.add_node(node, "127.0.0.1", 9000 + node)
    return state


def leader_of(state: ClusterState, topic: str = TOPIC, partition: int = 0) -> int:
    leader = state.partition_leader(topic, partition)
    assert leader is not None
    return leader


async def call(state: ClusterState, module: Any, request: Any, version: int,
               node: int | None = None) -> Any:
    """Run a handler as the server would: decode the request, encode the response."""
    if node is None:
        node = leader_of(state)
    wire = type(request).decode(request.encode(version), version)
    ctx = RequestContext(node_id=node, state=state, connection_id=1, header=RequestHeader(
        request_api_key=request.API_KEY, request_api_version=version, correlation_id=7,
        client_id="test"))
    response = await module.handle(ctx, wire, version)
    if response is None:
        return None
    return type(response).decode(response.encode(version), version)


def batch(n: int = 1, *, value: bytes = b"v", pid: int = -1, epoch: int = -1, seq: int = -1,
          transactional: bool = False, ts: int = NOW) -> bytes:
    builder = RecordBatchBuilder(is_transactional=transactional, producer_id=pid,
                                 producer_epoch=epoch, base_sequence=seq)
    for i in range(n):
        builder.append(ts + i, b"k", value, [])
    return builder.build()


def produce_request(records: bytes, *, acks: int = -1, partition: int = 0, topic: str = TOPIC,
                    timeout_ms: int = 5000, transactional_id: str | None = None) -> ProduceRequest:
    return ProduceRequest(acks=acks, timeout_ms=timeout_ms, transactional_id=transactional_id,
                          topic_data=[ProduceRequest.TopicProduceData(name=topic, partition_data=[
                              ProduceRequest.TopicProduceData.PartitionProduceData(
                                  index=partition, records=records)])])


def fetch_request(state: ClusterState, offsets: dict[int, int], *, version: int,
                  max_wait_ms: int = 0, min_bytes: int = 1, max_bytes: int = 1 << 20,
                  partition_max_bytes: int = 1 << 20, isolation_level: int = 0,
                  current_leader_epoch: int = -1) -> FetchRequest:
    topic = FetchRequest.FetchTopic(
        partitions=[FetchRequest.FetchTopic.FetchPartition(
            partition=p, fetch_offset=o, partition_max_bytes=partition_max_bytes,
            current_leader_epoch=current_leader_epoch if version >= 9 else -1)
            for p, o in offsets.items()])
    if version >= 13:
        topic.topic_id = state.topics[TOPIC].topic_id
    else:
        topic.topic = TOPIC
    return FetchRequest(max_wait_ms=max_wait_ms, min_bytes=min_bytes, max_bytes=max_bytes,
                        isolation_level=isolation_level, topics=[topic],
                        session_epoch=-1)


def offsets_in(records: Any) -> list[int]:
    return [r.offset for b in iter_batches(bytes(records or b"")) for r in b]


def one_partition(response: Any) -> Any:
    return response.responses[0].partitions[0] if hasattr(response.responses[0], "partitions") \
        else response.responses[0].partition_responses[0]


@pytest.mark.anyio
@pytest.mark.parametrize(("produce_v", "fetch_v"), [(3, 4), (7, 11), (9, 12), (11, 13), (11, 17)])
async def test_produce_then_fetch(produce_v: int, fetch_v: int) -> None:
    state = make_state()
    # the first produce auto-creates the topic; node 1 may not be the leader it picks
    first = one_partition(await call(state, produce, produce_request(batch(3)), produce_v, node=1))
    assert TOPIC in state.topics
    if first.error_code == 6:
        first = one_partition(await call(state, produce, produce_request(batch(3)), produce_v))
    assert (first.error_code, first.base_offset) == (0, 0)
    second = one_partition(await call(state, produce, produce_request(batch(2)), produce_v))
    assert (second.error_code, second.base_offset) == (0, 3)
    assert second.log_start_offset == (0 if produce_v >= 5 else -1)
    total = 5
    response = await call(state, fetch, fetch_request(state, {0: 0}, version=fetch_v), fetch_v)
    assert response.session_id == 0 and response.error_code == 0
    part = one_partition(response)
    assert part.error_code == 0
    assert part.high_watermark == total and part.last_stable_offset == total
    assert part.log_start_offset == (0 if fetch_v >= 5 else -1)
    assert offsets_in(part.records) == list(range(total))


@pytest.mark.anyio
async def test_produce_acks() -> None:
    state = make_state()
    state.create_topic(TOPIC, 1, 3)
    assert await call(state, produce, produce_request(batch(), acks=0), 9) is None
    one = one_partition(await call(state, produce, produce_request(batch(), acks=1), 9))
    assert (one.error_code, one.base_offset, one.log_append_time_ms, one.log_start_offset) == \
        (0, 1, -1, 0)
    bad = one_partition(await call(state, produce, produce_request(batch(), acks=2), 9))
    assert bad.error_code == 21  # INVALID_REQUIRED_ACKS
    log = state.logs.partition(TOPIC, 0)
    assert log is not None and log.log_end_offset == 2


@pytest.mark.anyio
async def test_acks_all_needs_min_insync_replicas() -> None:
    state = make_state()
    state.create_topic(TOPIC, 1, 3, {"min.insync.replicas": "3"})
    follower = next(r for r in state.topics[TOPIC].partitions[0].replicas if r != leader_of(state))
    state.set_node_alive(follower, False)
    resp = one_partition(await call(state, produce, produce_request(batch()), 9))
    assert resp.error_code == 19  # NOT_ENOUGH_REPLICAS, nothing written
    assert state.logs.partition(TOPIC, 0).log_end_offset == 0  # type: ignore[union-attr]
    assert one_partition(await call(state, produce, produce_request(batch(), acks=1), 9)).error_code == 0


@pytest.mark.anyio
async def test_acks_all_waits_for_the_isr_and_times_out() -> None:
    state = make_state()
    state.create_topic(TOPIC, 1, 3)
    leader = leader_of(state)
    log = state.logs.partition(TOPIC, 0)
    assert log is not None
    part = state.topics[TOPIC].partitions[0]
    # a follower that stopped while still in the ISR holds the high watermark back
    log.update_replication(leader=leader, leader_epoch=part.leader_epoch, isr=part.replicas,
                           alive=[leader])
    resp = one_partition(await call(state, produce, produce_request(batch(), timeout_ms=30), 9))
    assert resp.error_code == 7  # REQUEST_TIMED_OUT (the data is in the leader's log)
    assert log.log_end_offset == 1 and log.high_watermark == 0
    results: list[Any] = []

    async def produce_and_wait() -> None:
        results.append(one_partition(await call(state, produce, produce_request(batch()), 9)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce_and_wait)
        await anyio.wait_all_tasks_blocked()
        assert results == []
        log.update_replication(leader=leader, leader_epoch=part.leader_epoch, isr=[leader],
                               alive=[leader])
    assert results[0].error_code == 0 and results[0].base_offset == 1


@pytest.mark.anyio
async def test_not_leader_and_unknown_topic() -> None:
    state = make_state(auto_create_topics_enable=False)
    resp = one_partition(await call(state, produce, produce_request(batch()), 9, node=1))
    assert resp.error_code == 3
    state.create_topic(TOPIC, 1, 3)
    leader = leader_of(state)
    other = next(n for n in (1, 2, 3) if n != leader)
    resp = one_partition(await call(state, produce, produce_request(batch()), 10, node=other))
    assert resp.error_code == 6
    assert resp.current_leader.leader_id == leader
    fetched = one_partition(await call(
        state, fetch, fetch_request(state, {0: 0}, version=12), 12, node=other))
    assert fetched.error_code == 6 and fetched.current_leader.leader_id == leader
    hinted = await call(state, produce, produce_request(batch()), 11, node=other)
    assert [(e.node_id, e.port) for e in hinted.node_endpoints] == [(leader, 9000 + leader)]
    fetched = await call(state, fetch, fetch_request(state, {0: 0}, version=17), 17, node=other)
    assert [(e.node_id, e.port) for e in fetched.node_endpoints] == [(leader, 9000 + leader)]


@pytest.mark.anyio
async def test_produce_validation_errors_reach_the_response() -> None:
    state = make_state()
    state.create_topic(TOPIC, 1, 1, {"max.message.bytes": "200"})
    big = one_partition(await call(state, produce, produce_request(batch(value=b"x" * 300)), 9))
    assert big.error_code == 10 and big.error_message
    corrupt = bytearray(batch())
    corrupt[-1] ^= 1
    assert one_partition(await call(state, produce, produce_request(bytes(corrupt)), 9)).error_code == 2
    future = one_partition(await call(state, produce, produce_request(batch(ts=NOW + 10**8)), 9))
    assert future.error_code == 32
    assert [e.batch_index for e in future.record_errors] == [0]


@pytest.mark.anyio
async def test_idempotent_retry_gets_the_original_offset() -> None:
    state = make_state()
    state.create_topic(TOPIC, 1, 3)
    first = one_partition(await call(state, produce, produce_request(
        batch(2, pid=50, epoch=0, seq=0)), 9))
    await call(state, produce, produce_request(batch(1, pid=50, epoch=0, seq=2)), 9)
    retry = one_partition(await call(state, produce, produce_request(
        batch(2, pid=50, epoch=0, seq=0)), 9))
    assert (first.error_code, retry.error_code, retry.base_offset) == (0, 0, first.base_offset)
    gap = one_partition(await call(state, produce, produce_request(
        batch(1, pid=50, epoch=0, seq=7)), 9))
    assert gap.error_code == 45
    described = await call(state, describe_producers, DescribeProducersRequest(topics=[
        DescribeProducersRequest.TopicRequest(name=TOPIC, partition_indexes=[0])]), 0)
    (producer,) = described.topics[0].partitions[0].active_producers
    assert (producer.producer_id, producer.producer_epoch, producer.last_sequence) == (50, 0, 2)
    assert producer.current_txn_start_offset == -1


@pytest.mark.anyio
async def test_fetch_long_poll_wakes_on_append() -> None:
    state = make_state()
    state.create_topic(TOPIC, assignments={0: [1], 1: [1]})
    empty = await call(state, fetch, fetch_request(state, {0: 0, 1: 0}, version=12), 12)
    assert [p.records for p in empty.responses[0].partitions] == [b"", b""]
    got: list[Any] = []

    async def long_poll() -> None:
        got.append(await call(state, fetch, fetch_request(
            state, {0: 0, 1: 0}, version=12, max_wait_ms=10_000), 12))

    async with anyio.create_task_group() as tg:
        tg.start_soon(long_poll)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        await call(state, produce, produce_request(batch(2), partition=1), 9,
                   node=leader_of(state, TOPIC, 1))
    parts = got[0].responses[0].partitions
    assert offsets_in(parts[0].records) == [] and offsets_in(parts[1].records) == [0, 1]


@pytest.mark.anyio
async def test_fetch_min_bytes_waits_until_timeout() -> None:
    state = make_state()
    state.create_topic(TOPIC, 1, 1)
    await call(state, produce, produce_request(batch()), 9)
    with anyio.fail_after(5):
        resp = await call(state, fetch, fetch_request(
            state, {0: 0}, version=11, max_wait_ms=20, min_bytes=1 << 20), 11)
    assert offsets_in(one_partition(resp).records) == [0]


@pytest.mark.anyio
async def test_fetch_byte_limits_and_first_batch_rule() -> None:
    state = make_state()
    state.create_topic(TOPIC, assignments={0: [2], 1: [2]})
    size = len(batch(value=b"x" * 100))
    for p in (0, 1):
        for _ in range(3):
            await call(state, produce, produce_request(batch(value=b"x" * 100), partition=p), 9,
                       node=leader_of(state, TOPIC, p))
    # partition limit smaller than one batch: the first partition still gets one batch,
    # the second gets nothing (its first batch would not be the response's first)
    resp = await call(state, fetch, fetch_request(
        state, {0: 0, 1: 0}, version=12, partition_max_bytes=10), 12)
    parts = resp.responses[0].partitions
    assert offsets_in(parts[0].records) == [0]
    assert offsets_in(parts[1].records) == []
    # total max_bytes: two batches in all
    resp = await call(state, fetch, fetch_request(
        state, {0: 0}, version=12, max_bytes=2 * size + 5), 12)
    assert offsets_in(one_partition(resp).records) == [0, 1]
    resp = await call(state, fetch, fetch_request(
        state, {0: 0}, version=12, partition_max_bytes=2 * size), 12)
    assert offsets_in(one_partition(resp).records) == [0, 1]


@pytest.mark.anyio
async def test_fetch_errors() -> None:
    state = make_state()
    state.create_topic(TOPIC, 1, 3)
    # move the leader once so that an older epoch exists to be fenced
    part = state.topics[TOPIC].partitions[0]
    state.move_leader(TOPIC, 0, next(r for r in part.replicas if r != part.leader))
    await call(state, produce, produce_request(batch()), 9)
    oor = one_partition(await call(state, fetch, fetch_request(state, {0: 5}, version=12), 12))
    assert oor.error_code == 1 and oor.high_watermark == 1
    epoch = part.leader_epoch
    assert epoch > 0
    fenced = one_partition(await call(state, fetch, fetch_request(
        state, {0: 0}, version=12, current_leader_epoch=epoch - 1), 12))
    assert fenced.error_code == 74
    ahead = one_partition(await call(state, fetch, fetch_request(
        state, {0: 0}, version=12, current_leader_epoch=epoch + 1), 12))
    assert ahead.error_code == 75
    ok = one_partition(await call(state, fetch, fetch_request(
        state, {0: 0}, version=12, current_leader_epoch=epoch), 12))
    assert ok.error_code == 0
    request = fetch_request(state, {0: 0}, version=13)
    request.topics[0].topic_id = uuid.uuid4()
    unknown = one_partition(await call(state, fetch, request, 13))
    assert unknown.error_code == 100
    session = fetch_request(state, {0: 0}, version=12)
    session.session_id = 99
    assert (await call(state, fetch, session, 12)).error_code == 70


@pytest.mark.anyio
async def test_read_committed_with_aborted_transactions() -> None:
    state = make_state()
    state.create_topic(TOPIC, 1, 1)
    log = state.logs.partition(TOPIC, 0)
    assert log is not None
    await call(state, produce, produce_request(batch(2)), 9)  # 0-1
    log.append(batch(2, pid=70, epoch=0, seq=0, transactional=True), now_ms=NOW)  # 2-3
    committed = one_partition(await call(state, fetch, fetch_request(
        state, {0: 0}, version=12, isolation_level=1), 12))
    assert committed.last_stable_offset == 2 and committed.high_watermark == 4
    assert offsets_in(committed.records) == [0, 1]
    log.append_control(70, 0, commit=False, coordinator_epoch=0, now_ms=NOW)  # 4
    log.append(batch(1, pid=71, epoch=0, seq=0, transactional=True), now_ms=NOW)  # 5
    log.append_control(71, 0, commit=True, coordinator_epoch=0, now_ms=NOW)  # 6
    for version in (4, 12, 17):
        resp = one_partition(await call(state, fetch, fetch_request(
            state, {0: 0}, version=version, isolation_level=1), version))
        assert resp.last_stable_offset == 7
        assert [(a.producer_id, a.first_offset) for a in resp.aborted_transactions] == [(70, 2)]
        assert offsets_in(resp.records)[-1] == 6
    uncommitted = one_partition(await call(state, fetch, fetch_request(state, {0: 0}, version=12), 12))
    assert uncommitted.aborted_transactions is None
    latest = await call(state, list_offsets, ListOffsetsRequest(replica_id=-1, isolation_level=1,
        topics=[ListOffsetsRequest.ListOffsetsTopic(name=TOPIC, partitions=[
            ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(partition_index=0,
                                                                     timestamp=-1)])]), 7)
    assert latest.topics[0].partitions[0].offset == 7


def list_offsets_request(timestamps: list[int], isolation_level: int = 0) -> ListOffsetsRequest:
    part = ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition
    return ListOffsetsRequest(replica_id=-1, isolation_level=isolation_level, topics=[
        ListOffsetsRequest.ListOffsetsTopic(name=TOPIC, partitions=[
            part(partition_index=0, timestamp=ts) for ts in timestamps])])


@pytest.mark.anyio
@pytest.mark.parametrize("version", [1, 4, 7, 9, 10])
async def test_list_offsets(version: int) -> None:
    state = make_state()
    state.create_topic(TOPIC, 1, 1)
    await call(state, produce, produce_request(batch(3, ts=NOW)), 9)  # ts NOW..NOW+2
    await call(state, produce, produce_request(batch(2, ts=NOW + 100)), 9)
    queries = [-2, -1, NOW + 1, NOW + 50, NOW + 1000]
    if version >= 7:
        queries.append(-3)
    resp = await call(state, list_offsets, list_offsets_request(queries), version)
    answers = [(p.error_code, p.offset, p.timestamp) for p in resp.topics[0].partitions]
    expected = [(0, 0, -1), (0, 5, -1), (0, 1, NOW + 1), (0, 3, NOW + 100), (0, -1, -1)]
    if version >= 7:
        expected.append((0, 4, NOW + 101))
    assert answers == expected
    if version >= 4:
        assert resp.topics[0].partitions[1].leader_epoch == \
            state.topics[TOPIC].partitions[0].leader_epoch


@pytest.mark.anyio
async def test_offset_for_leader_epoch_after_leader_moves() -> None:
    state = make_state()
    state.create_topic(TOPIC, 1, 3)
    await call(state, produce, produce_request(batch(3)), 9)
    first_epoch = state.topics[TOPIC].partitions[0].leader_epoch
    new_leader = next(r for r in state.topics[TOPIC].partitions[0].replicas if r != leader_of(state))
    state.move_leader(TOPIC, 0, new_leader)
    await call(state, produce, produce_request(batch(2)), 9)
    part = OffsetForLeaderEpochRequest.OffsetForLeaderTopic.OffsetForLeaderPartition
    request = OffsetForLeaderEpochRequest(topics=[OffsetForLeaderEpochRequest.OffsetForLeaderTopic(
        topic=TOPIC, partitions=[part(partition=0, leader_epoch=first_epoch),
                                 part(partition=0, leader_epoch=first_epoch + 1)])])
    resp = await call(state, offset_for_leader_epoch, request, 4)
    ends = [(p.error_code, p.leader_epoch, p.end_offset) for p in resp.topics[0].partitions]
    assert ends == [(0, first_epoch, 3), (0, first_epoch + 1, 5)]


@pytest.mark.anyio
async def test_delete_records() -> None:
    state = make_state()
    state.create_topic(TOPIC, 1, 1)
    for _ in range(4):
        await call(state, produce, produce_request(batch()), 9)
    part = DeleteRecordsRequest.DeleteRecordsTopic.DeleteRecordsPartition
    request = DeleteRecordsRequest(timeout_ms=1000, topics=[DeleteRecordsRequest.DeleteRecordsTopic(
        name=TOPIC, partitions=[part(partition_index=0, offset=2)])])
    resp = await call(state, delete_records, request, 2)
    assert (resp.topics[0].partitions[0].error_code, resp.topics[0].partitions[0].low_watermark) \
        == (0, 2)
    request.topics[0].partitions[0].offset = 10
    resp = await call(state, delete_records, request, 2)
    assert resp.topics[0].partitions[0].error_code == 1
    earliest = await call(state, list_offsets, list_offsets_request([-2]), 7)
    assert earliest.topics[0].partitions[0].offset == 2
    below = one_partition(await call(state, fetch, fetch_request(state, {0: 1}, version=12), 12))
    assert below.error_code == 1 and below.log_start_offset == 2
