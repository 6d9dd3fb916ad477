"""The broker's network side over a raw socket: ApiVersions, Metadata, ordering, bad input."""

from __future__ import annotations

import struct
import uuid

import anyio
import pytest

from streamclient.broker import EmbeddedCluster
from streamclient.broker.handlers.registry import REGISTRY
from streamclient.protocol.framing import encode_request
from streamclient.protocol.messages import (
    REQUEST_TYPES,
    ApiVersionsRequest,
    CreateTopicsRequest,
    MetadataRequest,
)
from streamclient.testing import WireClient

pytestmark = pytest.mark.anyio

UNSUPPORTED_VERSION = 35
Topic = MetadataRequest.MetadataRequestTopic


def wire(cluster: EmbeddedCluster, node: int = 0) -> WireClient:
    return WireClient(*cluster.address(node))


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
async def test_api_versions_lists_every_registered_handler(
        kafka_cluster: EmbeddedCluster, version: int) -> None:
    request = ApiVersionsRequest(client_software_name="wire-test",
                                 client_software_version="1.0")
    async with wire(kafka_cluster) as client:
        response = await client.send(request, version)
    assert response.error_code == 0
    advertised = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert advertised == REGISTRY.advertised_versions()
    # the APIs this part of the broker serves, at the versions clients use
    assert advertised[18][1] >= 3 and advertised[3] == (0, 12)
    for key in (19, 20, 32, 33, 37, 44, 60):
        assert key in advertised
    for key, (_lo, hi) in advertised.items():
        assert hi <= REQUEST_TYPES[key].LATEST_STABLE_VERSION


async def test_api_versions_rejects_bad_client_software_name(
        kafka_cluster: EmbeddedCluster) -> None:
    async with wire(kafka_cluster) as client:
        response = await client.send(
            ApiVersionsRequest(client_software_name="-bad name-",
                               client_software_version="1"), 3)
    assert response.error_code == 42


async def test_unknown_api_versions_version_is_answered_at_v0(
        kafka_cluster: EmbeddedCluster) -> None:
    # a v9 ApiVersions request: the header is what a future client would send
    body = struct.pack(">hhi", 18, 9, 77) + struct.pack(">h", 4) + b"test" + b"\x00" * 4
    async with wire(kafka_cluster) as client:
        await client.send_raw(struct.pack(">i", len(body)) + body)
        correlation_id, response = await client.receive(ApiVersionsRequest, 0)
        assert correlation_id == 77
        assert response.error_code == UNSUPPORTED_VERSION
        assert {k.api_key for k in response.api_keys} == set(REGISTRY.advertised_versions())
        # the connection stays usable for a supported version
        assert (await client.send(ApiVersionsRequest(), 0)).error_code == 0


@pytest.mark.kafka_cluster(nodes=3)
@pytest.mark.parametrize("version", [0, 1, 2, 4, 7, 9, 10, 12])
async def test_metadata_versions(kafka_cluster: EmbeddedCluster, version: int) -> None:
    kafka_cluster.state.create_topic("meta", 3, 2)
    async with wire(kafka_cluster, 2) as client:
        response = await client.send(MetadataRequest(topics=[Topic(name="meta")]), version)
    nodes = kafka_cluster.state.nodes
    assert [(b.node_id, b.host, b.port) for b in response.brokers] == [
        (n.node_id, n.host, n.port) for n in nodes.values()]
    if version >= 1:
        assert response.controller_id == 0
    if version >= 2:
        assert response.cluster_id == kafka_cluster.state.cluster_id
    [topic] = response.topics
    meta = kafka_cluster.state.topics["meta"]
    assert (topic.error_code, topic.name) == (0, "meta")
    if version >= 10:
        assert topic.topic_id == meta.topic_id
    assert [p.partition_index for p in topic.partitions] == [0, 1, 2]
    for p in topic.partitions:
        state = meta.partitions[p.partition_index]
        assert (p.leader_id, p.replica_nodes, p.isr_nodes) == (
            state.leader, state.replicas, state.isr)
        assert len(p.replica_nodes) == 2
    # leaders spread over the nodes
    assert len({p.leader_id for p in topic.partitions}) == 3


async def test_metadata_all_topics_and_internal_flags(kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.state.create_topic("b-topic", 1, 1)
    kafka_cluster.state.create_topic("a-topic", 2, 1)
    async with wire(kafka_cluster) as client:
        every = await client.send(MetadataRequest(topics=None), 12)
        every_v0 = await client.send(MetadataRequest(topics=[]), 0)
        none = await client.send(MetadataRequest(topics=[]), 1)
    names = [t.name for t in every.topics]
    assert names == ["__consumer_offsets", "__transaction_state", "a-topic", "b-topic"]
    assert [t.is_internal for t in every.topics] == [True, True, False, False]
    assert [t.name for t in every_v0.topics] == names
    assert none.topics == []
    offsets = every.topics[0]
    assert len(offsets.partitions) == kafka_cluster.state.config.offsets_topic_num_partitions


@pytest.mark.parametrize("version", [3, 4, 12])
async def test_metadata_auto_creates_when_allowed(kafka_cluster: EmbeddedCluster,
                                                  version: int) -> None:
    async with wire(kafka_cluster) as client:
        forbidden = await client.send(
            MetadataRequest(topics=[Topic(name="nope")],
                            allow_auto_topic_creation=version < 4), version)
        allowed = await client.send(
            MetadataRequest(topics=[Topic(name="auto")], allow_auto_topic_creation=True),
            version)
    if version < 4:
        # before v4 there is no flag (it reads as true): the broker's setting decides
        assert forbidden.topics[0].error_code == 0
    else:
        assert forbidden.topics[0].error_code == 3
        assert "nope" not in kafka_cluster.state.topics
    assert allowed.topics[0].error_code == 0
    assert len(allowed.topics[0].partitions) == 1
    assert "auto" in kafka_cluster.state.topics


@pytest.mark.kafka_cluster(auto_create_topics=False)
async def test_metadata_no_auto_create_when_broker_disables_it(
        kafka_cluster: EmbeddedCluster) -> None:
    async with wire(kafka_cluster) as client:
        response = await client.send(MetadataRequest(topics=[Topic(name="x")]), 12)
    assert response.topics[0].error_code == 3
    assert "x" not in kafka_cluster.state.topics


async def test_metadata_invalid_names_and_topic_ids(kafka_cluster: EmbeddedCluster) -> None:
    meta = kafka_cluster.state.create_topic("by-id", 1, 1)
    unknown = uuid.uuid4()
    async with wire(kafka_cluster) as client:
        response = await client.send(MetadataRequest(topics=[
            Topic(name="bad name!"), Topic(name=None, topic_id=meta.topic_id),
            Topic(name=None, topic_id=unknown)]), 12)
    bad, found, missing = response.topics
    assert (bad.name, bad.error_code) == ("bad name!", 17)
    assert (found.name, found.topic_id, found.error_code) == ("by-id", meta.topic_id, 0)
    assert (missing.name, missing.topic_id, missing.error_code) == (None, unknown, 100)


async def test_metadata_authorized_operations_when_asked(kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.state.create_topic("ops", 1, 1)
    async with wire(kafka_cluster) as client:
        plain = await client.send(MetadataRequest(topics=[Topic(name="ops")]), 10)
        asked = await client.send(MetadataRequest(
            topics=[Topic(name="ops")], include_topic_authorized_operations=True,
            include_cluster_authorized_operations=True), 10)
    assert plain.topics[0].topic_authorized_operations == -(1 << 31)
    ops = asked.topics[0].topic_authorized_operations
    assert ops & (1 << 3) and ops & (1 << 4) and ops & (1 << 8)  # READ, WRITE, DESCRIBE
    assert asked.cluster_authorized_operations & (1 << 8)


async def test_pipelined_responses_keep_request_order(kafka_cluster: EmbeddedCluster) -> None:
    # the first request is slowed down; the later ones must still come after it
    kafka_cluster.faults.control(MetadataRequest, delay_ms=150, times=1)
    async with wire(kafka_cluster) as client:
        sent = []
        for i in range(20):
            request = (MetadataRequest(topics=[]) if i % 2 == 0 else ApiVersionsRequest())
            sent.append((await client.send_request(request, 1), type(request)))
        for correlation_id, request_type in sent:
            got, response = await client.receive(request_type, 1)
            assert got == correlation_id
            assert isinstance(response, request_type.RESPONSE_TYPE)


async def test_a_slow_connection_does_not_block_another(kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.faults.control(MetadataRequest, delay_ms=5_000, times=1)
    async with wire(kafka_cluster) as slow, wire(kafka_cluster) as fast:
        await slow.send_request(MetadataRequest(topics=[]), 1)
        with anyio.fail_after(2):
            response = await fast.send(ApiVersionsRequest(), 2)
        assert response.error_code == 0


@pytest.mark.parametrize("case", ["unknown-key", "unserved-version", "oversized", "negative",
                                  "garbage-body"])
async def test_bad_input_closes_only_that_connection(kafka_cluster: EmbeddedCluster,
                                                     case: str) -> None:
    if case == "unknown-key":
        body = struct.pack(">hhi", 9999, 0, 1) + struct.pack(">h", -1)
        frame = struct.pack(">i", len(body)) + body
    elif case == "unserved-version":
        body = struct.pack(">hhi", 3, 99, 1) + struct.pack(">h", -1)
        frame = struct.pack(">i", len(body)) + body
    elif case == "oversized":
        frame = struct.pack(">i", kafka_cluster.max_frame_bytes + 1)
    elif case == "negative":
        frame = struct.pack(">i", -5)
    else:
        valid = encode_request(CreateTopicsRequest(topics=[]), 5, 1, "x")
        body = valid[4:14] + b"\xff" * 7  # a valid header start, then nonsense
        frame = struct.pack(">i", len(body)) + body
    async with wire(kafka_cluster) as bad, wire(kafka_cluster) as good:
        await bad.send_raw(frame)
        assert await bad.closed_by_peer()
        assert (await good.send(ApiVersionsRequest(), 3)).error_code == 0
    async with wire(kafka_cluster) as fresh:
        assert (await fresh.send(MetadataRequest(topics=[]), 1)).topics == []
