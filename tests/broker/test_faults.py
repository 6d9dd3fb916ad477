"""Fault injection: error answers, delays, dropped connections, filters and observers."""

from __future__ import annotations

import anyio
import pytest

from streamclient.broker import EmbeddedCluster
from streamclient.broker.error_response import error_response
from streamclient.broker.faults import FaultInjector
from streamclient.errors import IllegalArgumentError
from streamclient.protocol.messages import (
    ApiVersionsRequest,
    CreateTopicsRequest,
    DeleteGroupsRequest,
    FetchRequest,
    JoinGroupRequest,
    MetadataRequest,
    OffsetFetchRequest,
    ProduceRequest,
)
from streamclient.testing import WireClient

Creatable = CreateTopicsRequest.CreatableTopic


def create(name: str) -> CreateTopicsRequest:
    return CreateTopicsRequest(topics=[Creatable(name=name, num_partitions=1,
                                                 replication_factor=1)])


def wire(cluster: EmbeddedCluster, node: int = 0) -> WireClient:
    return WireClient(*cluster.address(node))


@pytest.mark.anyio
async def test_error_rule_fires_n_times_without_effect(kafka_cluster: EmbeddedCluster) -> None:
    rule = kafka_cluster.faults.control(CreateTopicsRequest, error=41,
                                        error_message="try later", times=2)
    async with wire(kafka_cluster) as client:
        first = await client.send(create("t1"), 5)
        second = await client.send(create("t1"), 5)
        third = await client.send(create("t1"), 5)
    assert [(r.topics[0].error_code, r.topics[0].error_message) for r in (first, second)] == [
        (41, "try later")] * 2
    assert third.topics[0].error_code == 0
    assert rule.hits == 2 and rule not in kafka_cluster.faults.rules
    assert list(kafka_cluster.state.topics).count("t1") == 1


@pytest.mark.anyio
async def test_rule_until_removed_and_node_filter(kafka_cluster: EmbeddedCluster) -> None:
    rule = kafka_cluster.faults.control(MetadataRequest, error=5, times=None, nodes=[0])
    kafka_cluster.state.create_topic("m", 1, 1)
    request = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="m")])
    async with wire(kafka_cluster) as client:
        for _ in range(3):
            assert (await client.send(request, 9)).topics[0].error_code == 5
        rule.remove()
        assert (await client.send(request, 9)).topics[0].error_code == 0
    assert rule.hits == 3


@pytest.mark.anyio
@pytest.mark.kafka_cluster(nodes=2)
async def test_node_filter_spares_other_nodes(kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.faults.control(ApiVersionsRequest, error=35, times=None, nodes=1)
    async with wire(kafka_cluster, 0) as zero, wire(kafka_cluster, 1) as one:
        assert (await zero.send(ApiVersionsRequest(), 2)).error_code == 0
        assert (await one.send(ApiVersionsRequest(), 2)).error_code == 35


@pytest.mark.anyio
async def test_predicate_selects_requests(kafka_cluster: EmbeddedCluster) -> None:
    seen_versions: list[int] = []

    def only_b(request: CreateTopicsRequest, version: int) -> bool:
        seen_versions.append(version)
        return request.topics[0].name == "b"

    kafka_cluster.faults.control(CreateTopicsRequest, error=36, when=only_b)
    async with wire(kafka_cluster) as client:
        a = await client.send(create("a"), 4)
        b = await client.send(create("b"), 4)
    assert (a.topics[0].error_code, b.topics[0].error_code) == (0, 36)
    assert "b" not in kafka_cluster.state.topics and seen_versions == [4, 4]


@pytest.mark.anyio
async def test_drop_before_has_no_effect(kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.faults.control(CreateTopicsRequest, drop="before")
    async with wire(kafka_cluster) as client:
        await client.send_request(create("lost"), 5)
        assert await client.closed_by_peer()
    assert "lost" not in kafka_cluster.state.topics
    async with wire(kafka_cluster) as client:  # the rule was used up
        assert (await client.send(create("lost"), 5)).topics[0].error_code == 0


@pytest.mark.anyio
async def test_drop_after_takes_effect_but_loses_the_response(
        kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.faults.control(CreateTopicsRequest, drop="after")
    async with wire(kafka_cluster) as client:
        await client.send_request(create("applied"), 5)
        assert await client.closed_by_peer()
    assert "applied" in kafka_cluster.state.topics
    async with wire(kafka_cluster) as client:
        assert (await client.send(create("applied"), 5)).topics[0].error_code == 36


@pytest.mark.anyio
async def test_delay_then_normal_handling(kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.faults.control(ApiVersionsRequest, delay_ms=200)
    async with wire(kafka_cluster) as client:
        started = anyio.current_time()
        response = await client.send(ApiVersionsRequest(), 3)
        elapsed = anyio.current_time() - started
    assert response.error_code == 0 and response.api_keys
    assert elapsed >= 0.19


@pytest.mark.anyio
async def test_respond_with_a_custom_response(kafka_cluster: EmbeddedCluster) -> None:
    def answer(request: ApiVersionsRequest, version: int) -> object:
        return ApiVersionsRequest.RESPONSE_TYPE(error_code=0, api_keys=[])

    kafka_cluster.faults.control(18, respond=answer)
    async with wire(kafka_cluster) as client:
        assert (await client.send(ApiVersionsRequest(), 3)).api_keys == []
        assert (await client.send(ApiVersionsRequest(), 3)).api_keys != []


@pytest.mark.anyio
@pytest.mark.kafka_cluster(nodes=2)
async def test_observe_records_requests(kafka_cluster: EmbeddedCluster) -> None:
    everywhere = kafka_cluster.faults.observe(MetadataRequest)
    node_one = kafka_cluster.faults.observe(MetadataRequest, nodes=1)
    kafka_cluster.faults.control(MetadataRequest, error=5)
    async with wire(kafka_cluster, 0) as zero, wire(kafka_cluster, 1) as one:
        await zero.send(MetadataRequest(topics=[]), 4)
        await one.send(MetadataRequest(topics=None), 12)
    assert [(r.node_id, r.api_version) for r in everywhere.requests] == [(0, 4), (1, 12)]
    assert everywhere.requests[1].request.topics is None
    assert everywhere.requests[0].header.client_id == "wire-test"
    assert len(node_one) == 1
    node_one.remove()
    everywhere.clear()
    assert len(everywhere) == 0


@pytest.mark.parametrize("kwargs", [
    {}, {"error": 1, "respond": lambda r, v: r}, {"drop": "sideways"},
    {"drop": "before", "error": 5}, {"delay_ms": -1}, {"error": 5, "times": 0},
])
def test_control_rejects_meaningless_rules(kwargs: dict[str, object]) -> None:
    with pytest.raises(IllegalArgumentError):
        FaultInjector().control(ProduceRequest, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(IllegalArgumentError):
        FaultInjector().control("Produce", error=1)  # type: ignore[arg-type]


def test_error_responses_mirror_the_request() -> None:
    produce = ProduceRequest(acks=-1, timeout_ms=100, topic_data=[
        ProduceRequest.TopicProduceData(name="t", partition_data=[
            ProduceRequest.TopicProduceData.PartitionProduceData(index=i, records=b"")
            for i in (0, 3)])])
    response = error_response(produce, 9, 6, "moved")
    [topic] = response.responses
    assert topic.name == "t"
    assert [(p.index, p.error_code, p.error_message, p.base_offset)
            for p in topic.partition_responses] == [(0, 6, "moved", -1), (3, 6, "moved", -1)]
    response.encode(9)

    fetch = FetchRequest(topics=[FetchRequest.FetchTopic(topic="f", partitions=[
        FetchRequest.FetchTopic.FetchPartition(partition=2)])])
    fetched = error_response(fetch, 11, 1)
    assert fetched.error_code == 1
    [part] = fetched.responses[0].partitions
    assert (fetched.responses[0].topic, part.partition_index, part.error_code,
            part.high_watermark) == ("f", 2, 1, -1)

    join = error_response(JoinGroupRequest(group_id="g", protocols=[
        JoinGroupRequest.JoinGroupRequestProtocol(name="range")]), 5, 16)
    assert (join.error_code, join.members) == (16, [])

    groups = error_response(DeleteGroupsRequest(groups_names=["a", "b"]), 2, 15)
    assert [(r.group_id, r.error_code) for r in groups.results] == [("a", 15), ("b", 15)]

    offsets = error_response(OffsetFetchRequest(groups=[
        OffsetFetchRequest.OffsetFetchRequestGroup(group_id="g", topics=[
            OffsetFetchRequest.OffsetFetchRequestGroup.OffsetFetchRequestTopics(
                name="t", partition_indexes=[1, 2])])]), 8, 16)
    [group] = offsets.groups
    assert group.error_code == 16
    assert [(p.partition_index, p.committed_offset, p.error_code)
            for p in group.topics[0].partitions] == [(1, -1, 16), (2, -1, 16)]
    offsets.encode(8)
