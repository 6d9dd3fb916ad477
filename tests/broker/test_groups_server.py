"""Coordinator handlers over real sockets: raw generated requests at several versions,
against an EmbeddedCluster, on asyncio and trio."""

from __future__ import annotations

import struct
from typing import Any

import anyio
import anyio.abc
import pytest

from streamclient.broker import EmbeddedCluster
from streamclient.broker.groups.error_code import Code
from streamclient.broker.handlers import load_all
from streamclient.protocol.framing import decode_response, encode_request
from streamclient.protocol.messages import (
    AddOffsetsToTxnRequest,
    AddPartitionsToTxnRequest,
    DeleteGroupsRequest,
    DescribeGroupsRequest,
    DescribeTransactionsRequest,
    EndTxnRequest,
    FindCoordinatorRequest,
    HeartbeatRequest,
    InitProducerIdRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    ListGroupsRequest,
    ListTransactionsRequest,
    OffsetCommitRequest,
    OffsetDeleteRequest,
    OffsetFetchRequest,
    SyncGroupRequest,
)

# import every handler now rather than lazily inside the first request's task
load_all()

GROUP = "wire-group"
TID = "wire-txn"


class Raw:
    """One socket, one request at a time."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.correlation_id = 0
        self.buffer = bytearray()

    async def __aenter__(self) -> Raw:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stream.aclose()

    async def request(self, request: Any, version: int) -> Any:
        self.correlation_id += 1
        await self.stream.send(encode_request(request, version, self.correlation_id, "rawc"))
        while True:
            if len(self.buffer) >= 4:
                (size,) = struct.unpack_from(">i", self.buffer, 0)
                if len(self.buffer) >= 4 + size:
                    frame = bytes(self.buffer[4:4 + size])
                    del self.buffer[:4 + size]
                    cid, response = decode_response(frame, type(request), version)
                    assert cid == self.correlation_id
                    return response
            self.buffer += await self.stream.receive()


async def connect(cluster: EmbeddedCluster, node_id: int) -> Raw:
    host, port = cluster.address(node_id)
    return Raw(await anyio.connect_tcp(host, port))


def new_cluster() -> EmbeddedCluster:
    return EmbeddedCluster(
        3, group_initial_rebalance_delay_ms=0, group_min_session_timeout_ms=100,
        offsets_topic_num_partitions=5, transaction_state_log_num_partitions=3,
        tick_interval_ms=20,
    )


def join_request(member_id: str = "", meta: bytes = b"sub") -> JoinGroupRequest:
    return JoinGroupRequest(
        group_id=GROUP, session_timeout_ms=10_000, rebalance_timeout_ms=10_000,
        member_id=member_id, protocol_type="consumer",
        protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range", metadata=meta)],
    )


@pytest.mark.anyio
@pytest.mark.parametrize("version", [0, 3, 4, 6])
async def test_find_coordinator(version: int) -> None:
    async with new_cluster() as cluster:
        expected = cluster.state.groups.coordinator_for(GROUP)
        txn_node = cluster.state.txns.coordinator_for(TID)
        async with await connect(cluster, 0) as conn:
            await _find(conn, version, expected, txn_node, cluster)


async def _find(conn: Raw, version: int, expected: int, txn_node: int,
                cluster: EmbeddedCluster) -> None:
    if version >= 4:
        r = await conn.request(FindCoordinatorRequest(key_type=0,
                                                      coordinator_keys=[GROUP, "other"]), version)
        assert [c.key for c in r.coordinators] == [GROUP, "other"]
        assert r.coordinators[0].node_id == expected
        assert r.coordinators[0].port == cluster.address(expected)[1]
        r = await conn.request(FindCoordinatorRequest(key_type=1, coordinator_keys=[TID]),
                               version)
        assert r.coordinators[0].node_id == txn_node
        assert r.coordinators[0].error_code == 0
    else:
        r = await conn.request(FindCoordinatorRequest(key=GROUP), version)
        assert (r.error_code, r.node_id) == (0, expected)
        assert (r.host, r.port) == cluster.address(expected)
        if version >= 1:
            r = await conn.request(FindCoordinatorRequest(key=TID, key_type=1), version)
            assert r.node_id == txn_node


@pytest.mark.anyio
@pytest.mark.parametrize(("join_v", "sync_v", "commit_v", "fetch_v"), [(5, 3, 2, 1), (9, 5, 8, 7)])
async def test_group_lifecycle_over_the_wire(
    join_v: int, sync_v: int, commit_v: int, fetch_v: int
) -> None:
    async with new_cluster() as cluster:
        cluster.state.create_topic("t", 2, 1)
        node = cluster.state.groups.coordinator_for(GROUP)
        async with await connect(cluster, node) as conn, \
                await connect(cluster, (node + 1) % 3) as other:
            await _lifecycle(conn, other, join_v, sync_v, commit_v, fetch_v)
        assert cluster.errors == []


async def _lifecycle(conn: Raw, other: Raw, join_v: int, sync_v: int, commit_v: int,
                     fetch_v: int) -> None:
    r = await conn.request(join_request(), join_v)
    assert r.error_code == Code.MEMBER_ID_REQUIRED and r.member_id.startswith("rawc-")
    member = r.member_id
    wrong = await other.request(join_request(member), join_v)
    assert wrong.error_code == Code.NOT_COORDINATOR
    r = await conn.request(join_request(member), join_v)
    assert (r.error_code, r.leader, r.member_id) == (0, member, member)
    assert r.protocol_name == "range" and r.generation_id == 1
    assert [(m.member_id, m.metadata) for m in r.members] == [(member, b"sub")]
    s = await conn.request(SyncGroupRequest(
        group_id=GROUP, generation_id=1, member_id=member,
        protocol_type="consumer" if sync_v >= 5 else None,
        protocol_name="range" if sync_v >= 5 else None,
        assignments=[SyncGroupRequest.SyncGroupRequestAssignment(
            member_id=member, assignment=b"plan")]), sync_v)
    assert (s.error_code, s.assignment) == (0, b"plan")
    h = await conn.request(HeartbeatRequest(group_id=GROUP, generation_id=1,
                                            member_id=member), 3)
    assert h.error_code == 0
    h = await conn.request(HeartbeatRequest(group_id=GROUP, generation_id=7,
                                            member_id=member), 3)
    assert h.error_code == Code.ILLEGAL_GENERATION

    P = OffsetCommitRequest.OffsetCommitRequestTopic.OffsetCommitRequestPartition
    commit = OffsetCommitRequest(
        group_id=GROUP, generation_id_or_member_epoch=1, member_id=member,
        topics=[OffsetCommitRequest.OffsetCommitRequestTopic(name="t", partitions=[
            P(partition_index=0, committed_offset=5, committed_metadata="md"),
            P(partition_index=9, committed_offset=1, committed_metadata=None)])])
    c = await conn.request(commit, commit_v)
    assert [p.error_code for p in c.topics[0].partitions] == [
        0, Code.UNKNOWN_TOPIC_OR_PARTITION]
    commit.generation_id_or_member_epoch = 2
    c = await conn.request(commit, commit_v)
    assert c.topics[0].partitions[0].error_code == Code.ILLEGAL_GENERATION

    f = await conn.request(OffsetFetchRequest(group_id=GROUP, topics=[
        OffsetFetchRequest.OffsetFetchRequestTopic(name="t", partition_indexes=[0, 1])]),
        fetch_v)
    parts = {p.partition_index: (p.committed_offset, p.metadata) for p in f.topics[0].partitions}
    assert parts == {0: (5, "md"), 1: (-1, "")}
    if fetch_v >= 2:
        f = await conn.request(OffsetFetchRequest(group_id=GROUP, topics=None), fetch_v)
        assert [(t.name, [p.partition_index for p in t.partitions]) for t in f.topics] == [
            ("t", [0])]

    d = await conn.request(DescribeGroupsRequest(groups=[GROUP, "unknown-g"]), 5)
    described = {g.group_id: g for g in d.groups}
    g = described[GROUP]
    assert (g.group_state, g.protocol_type, g.protocol_data) == ("Stable", "consumer", "range")
    assert [(m.member_id, m.client_id, m.member_assignment) for m in g.members] == [
        (member, "rawc", b"plan")]
    assert described["unknown-g"].group_state in ("Dead", "")

    lg = await conn.request(ListGroupsRequest(states_filter=["stable"]), 4)
    assert [(x.group_id, x.group_state) for x in lg.groups] == [(GROUP, "Stable")]
    lg = await conn.request(ListGroupsRequest(states_filter=["Empty"]), 4)
    assert lg.groups == []

    od = await conn.request(OffsetDeleteRequest(group_id=GROUP, topics=[
        OffsetDeleteRequest.OffsetDeleteRequestTopic(name="t", partitions=[
            OffsetDeleteRequest.OffsetDeleteRequestTopic.OffsetDeleteRequestPartition(
                partition_index=0)])]), 0)
    # the member's metadata is not a consumer subscription, so "t" is not subscribed
    assert od.error_code == 0

    dg = await conn.request(DeleteGroupsRequest(groups_names=[GROUP]), 2)
    assert dg.results[0].error_code == Code.NON_EMPTY_GROUP
    lv = await conn.request(LeaveGroupRequest(group_id=GROUP, members=[
        LeaveGroupRequest.MemberIdentity(member_id=member),
        LeaveGroupRequest.MemberIdentity(member_id="ghost")]), 3)
    assert [(m.member_id, m.error_code) for m in lv.members] == [
        (member, 0), ("ghost", Code.UNKNOWN_MEMBER_ID)]
    dg = await conn.request(DeleteGroupsRequest(groups_names=[GROUP]), 2)
    assert dg.results[0].error_code == 0


@pytest.mark.anyio
async def test_follower_parks_until_leader_syncs_over_the_wire() -> None:
    async with new_cluster() as cluster:
        node = cluster.state.groups.coordinator_for(GROUP)
        async with await connect(cluster, node) as a, await connect(cluster, node) as b:
            await _park(a, b)


async def _park(a: Raw, b: Raw) -> None:
    ida = (await a.request(join_request(), 4)).member_id
    idb = (await b.request(join_request(), 4)).member_id
    joined: dict[str, Any] = {}

    async def join(conn: Raw, mid: str) -> None:
        joined[mid] = await conn.request(join_request(mid), 4)

    async with anyio.create_task_group() as tg:
        tg.start_soon(join, a, ida)
        tg.start_soon(join, b, idb)
    leader = joined[ida].leader
    gen = joined[ida].generation_id
    conns = {ida: a, idb: b}
    follower = idb if leader == ida else ida
    synced: dict[str, bytes] = {}

    async def sync(mid: str, plan: list[Any]) -> None:
        r = await conns[mid].request(SyncGroupRequest(
            group_id=GROUP, generation_id=gen, member_id=mid, assignments=plan), 3)
        assert r.error_code == 0
        synced[mid] = r.assignment

    A = SyncGroupRequest.SyncGroupRequestAssignment
    async with anyio.create_task_group() as tg:
        tg.start_soon(sync, follower, [])
        await anyio.sleep(0.05)
        assert follower not in synced
        tg.start_soon(sync, leader, [A(member_id=leader, assignment=b"L"),
                                     A(member_id=follower, assignment=b"F")])
    assert synced == {leader: b"L", follower: b"F"}


@pytest.mark.anyio
async def test_transaction_apis_over_the_wire() -> None:
    async with new_cluster() as cluster:
        cluster.state.create_topic("t", 2, 1)
        node = cluster.state.txns.coordinator_for(TID)
        async with await connect(cluster, node) as conn:
            await _transactions(conn)
        assert cluster.errors == []


async def _transactions(conn: Raw) -> None:
    r = await conn.request(InitProducerIdRequest(transactional_id=TID,
                                                 transaction_timeout_ms=10_000), 1)
    assert r.error_code == 0 and r.producer_epoch == 0
    pid = r.producer_id
    T = AddPartitionsToTxnRequest.AddPartitionsToTxnTopic
    add = AddPartitionsToTxnRequest(
        v3_and_below_transactional_id=TID, v3_and_below_producer_id=pid,
        v3_and_below_producer_epoch=0, v3_and_below_topics=[T(name="t", partitions=[0, 1])])
    a = await conn.request(add, 3)
    assert [p.partition_error_code for t in a.results_by_topic_v3_and_below
            for p in t.results_by_partition] == [0, 0]
    ao = await conn.request(AddOffsetsToTxnRequest(transactional_id=TID, producer_id=pid,
                                                   producer_epoch=0, group_id="g"), 3)
    assert ao.error_code == 0
    desc = await conn.request(DescribeTransactionsRequest(transactional_ids=[TID, "none"]), 0)
    st = {s.transactional_id: s for s in desc.transaction_states}
    assert st[TID].transaction_state == "Ongoing" and st[TID].producer_id == pid
    assert ("t", [0, 1]) in [(td.topic, td.partitions) for td in st[TID].topics]
    assert st["none"].error_code in (Code.TRANSACTIONAL_ID_NOT_FOUND, Code.NOT_COORDINATOR)
    lt = await conn.request(ListTransactionsRequest(state_filters=["Ongoing", "Bogus"]), 1)
    assert [x.transactional_id for x in lt.transaction_states] == [TID]
    assert lt.unknown_state_filters == ["Bogus"]
    e = await conn.request(EndTxnRequest(transactional_id=TID, producer_id=pid,
                                         producer_epoch=0, committed=True), 3)
    assert e.error_code == 0
    e = await conn.request(EndTxnRequest(transactional_id=TID, producer_id=pid,
                                         producer_epoch=0, committed=False), 3)
    assert e.error_code == Code.INVALID_TXN_STATE
    # a second producer with the same id fences the first (KIP-588 code by version)
    r2 = await conn.request(InitProducerIdRequest(transactional_id=TID,
                                                  transaction_timeout_ms=10_000), 4)
    assert (r2.producer_id, r2.producer_epoch) == (pid, 1)
    a = await conn.request(add, 1)
    assert a.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code \
        == Code.INVALID_PRODUCER_EPOCH
    a = await conn.request(add, 3)
    assert a.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code \
        == Code.PRODUCER_FENCED
    bad = await conn.request(InitProducerIdRequest(transactional_id=TID,
                                                   transaction_timeout_ms=10**9), 4)
    assert bad.error_code == Code.INVALID_TRANSACTION_TIMEOUT
