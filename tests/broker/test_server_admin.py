"""Topic and config administration over the wire, at several versions of each API."""

from __future__ import annotations

import pytest

from streamclient.broker import EmbeddedCluster
from streamclient.protocol.messages import (
    AlterConfigsRequest,
    CreatePartitionsRequest,
    CreateTopicsRequest,
    DeleteTopicsRequest,
    DescribeClusterRequest,
    DescribeConfigsRequest,
    IncrementalAlterConfigsRequest,
)
from streamclient.testing import WireClient

pytestmark = [pytest.mark.anyio, pytest.mark.kafka_cluster(nodes=3)]

Creatable = CreateTopicsRequest.CreatableTopic
Assignment = Creatable.CreatableReplicaAssignment
TopicConfig = Creatable.CreatableTopicConfig
Resource = DescribeConfigsRequest.DescribeConfigsResource
TOPIC, BROKER = 2, 4


def wire(cluster: EmbeddedCluster, node: int = 0) -> WireClient:
    return WireClient(*cluster.address(node))


def topic(name: str, partitions: int = 1, factor: int = 1, **kwargs: object) -> Creatable:
    return Creatable(name=name, num_partitions=partitions, replication_factor=factor,
                     **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", [0, 1, 2, 4, 5, 7])
async def test_create_topics(kafka_cluster: EmbeddedCluster, version: int) -> None:
    configs = [TopicConfig(name="retention.ms", value="1000")]
    async with wire(kafka_cluster) as client:
        response = await client.send(CreateTopicsRequest(
            topics=[topic("created", 4, 3, configs=configs)], timeout_ms=5000), version)
    [result] = response.topics
    assert (result.name, result.error_code) == ("created", 0)
    meta = kafka_cluster.state.topics["created"]
    assert len(meta.partitions) == 4 and meta.replication_factor == 3
    assert meta.configs == {"retention.ms": "1000"}
    assert kafka_cluster.state.logs.partition("created", 3) is not None
    if version >= 5:
        assert (result.num_partitions, result.replication_factor) == (4, 3)
        echoed = {c.name: (c.value, c.config_source) for c in result.configs}
        assert echoed["retention.ms"] == ("1000", 1)  # DYNAMIC_TOPIC_CONFIG
        assert echoed["cleanup.policy"] == ("delete", 5)  # DEFAULT_CONFIG
    if version >= 7:
        assert result.topic_id == meta.topic_id


@pytest.mark.parametrize(("spec", "code"), [
    (topic("dup-name"), 36),  # created first below: TOPIC_ALREADY_EXISTS
    (topic("zero", 0), 37),  # INVALID_PARTITIONS
    (topic("too-wide", 1, 4), 38),  # INVALID_REPLICATION_FACTOR: only 3 nodes
    (topic("bad name"), 17),  # INVALID_TOPIC_EXCEPTION
    (topic("bad-config", configs=[TopicConfig(name="retention.ms", value="soon")]), 40),
    (topic("unknown-config", configs=[TopicConfig(name="no.such", value="1")]), 40),
    (topic("bad-policy", configs=[TopicConfig(name="cleanup.policy", value="shred")]), 40),
    (topic("with-both", 2, 1, assignments=[Assignment(partition_index=0, broker_ids=[0])]), 42),
    (topic("bad-assign", -1, -1, assignments=[Assignment(partition_index=0, broker_ids=[7])]),
     39),
    (topic("__consumer_offsets"), 36),
])
async def test_create_topics_errors(kafka_cluster: EmbeddedCluster, spec: Creatable,
                                    code: int) -> None:
    kafka_cluster.state.create_topic("dup-name", 1, 1)
    before = set(kafka_cluster.state.topics)
    async with wire(kafka_cluster) as client:
        response = await client.send(CreateTopicsRequest(topics=[spec]), 5)
    [result] = response.topics
    assert (result.name, result.error_code) == (spec.name, code)
    assert result.error_message
    assert set(kafka_cluster.state.topics) == before


async def test_create_topics_defaults_assignments_duplicates_validate_only(
        kafka_cluster: EmbeddedCluster) -> None:
    request = CreateTopicsRequest(topics=[
        topic("defaults", -1, -1),
        topic("assigned", -1, -1, assignments=[
            Assignment(partition_index=0, broker_ids=[2, 0]),
            Assignment(partition_index=1, broker_ids=[1, 2])]),
        topic("twice"), topic("twice"),
        topic("dry-run"),
    ])
    async with wire(kafka_cluster) as client:
        response = await client.send(request, 7)
        dry = await client.send(CreateTopicsRequest(topics=[topic("dry", 2, 2)],
                                                    validate_only=True), 7)
    codes = [(t.name, t.error_code) for t in response.topics]
    assert codes == [("defaults", 0), ("assigned", 0), ("twice", 42), ("twice", 42),
                     ("dry-run", 0)]
    state = kafka_cluster.state
    assert len(state.topics["defaults"].partitions) == state.config.num_partitions
    assigned = state.topics["assigned"].partitions
    assert [(p.replicas, p.leader) for p in assigned] == [([2, 0], 2), ([1, 2], 1)]
    assert "twice" not in state.topics
    assert (dry.topics[0].error_code, dry.topics[0].num_partitions) == (0, 2)
    assert "dry" not in state.topics


@pytest.mark.parametrize("version", [0, 1, 4, 5, 6])
async def test_delete_topics_by_name(kafka_cluster: EmbeddedCluster, version: int) -> None:
    meta = kafka_cluster.state.create_topic("doomed", 2, 1)
    if version >= 6:
        state = DeleteTopicsRequest.DeleteTopicState
        request = DeleteTopicsRequest(topics=[state(name="doomed"), state(name="ghost")],
                                      timeout_ms=1000)
    else:
        request = DeleteTopicsRequest(topic_names=["doomed", "ghost"], timeout_ms=1000)
    async with wire(kafka_cluster) as client:
        response = await client.send(request, version)
    results = [(r.name, r.error_code) for r in response.responses]
    assert results == [("doomed", 0), ("ghost", 3)]
    if version >= 6:
        assert response.responses[0].topic_id == meta.topic_id
    assert "doomed" not in kafka_cluster.state.topics
    assert kafka_cluster.state.logs.partition("doomed", 0) is None
    assert kafka_cluster.state.topic_by_id(meta.topic_id) is None


async def test_delete_topics_by_id_and_internal(kafka_cluster: EmbeddedCluster) -> None:
    import uuid

    meta = kafka_cluster.state.create_topic("by-id", 1, 1)
    state = DeleteTopicsRequest.DeleteTopicState
    ghost = uuid.uuid4()
    async with wire(kafka_cluster) as client:
        response = await client.send(DeleteTopicsRequest(topics=[
            state(topic_id=meta.topic_id), state(topic_id=ghost),
            state(name="__consumer_offsets")]), 6)
    first, second, third = response.responses
    assert (first.name, first.topic_id, first.error_code) == ("by-id", meta.topic_id, 0)
    assert (second.topic_id, second.error_code) == (ghost, 100)
    assert third.error_code == 73
    assert "__consumer_offsets" in kafka_cluster.state.topics


@pytest.mark.parametrize("version", [0, 1, 3])
async def test_create_partitions(kafka_cluster: EmbeddedCluster, version: int) -> None:
    kafka_cluster.state.create_topic("grow", 2, 2)
    kafka_cluster.state.create_topic("assign", 1, 2)
    cp = CreatePartitionsRequest.CreatePartitionsTopic
    assignment = cp.CreatePartitionsAssignment
    request = CreatePartitionsRequest(topics=[
        cp(name="grow", count=5, assignments=None),
        cp(name="assign", count=2, assignments=[assignment(broker_ids=[2, 1])]),
        cp(name="shrink-me", count=1, assignments=None),
    ], timeout_ms=1000)
    kafka_cluster.state.create_topic("shrink-me", 3, 1)
    async with wire(kafka_cluster) as client:
        response = await client.send(request, version)
        wrong = await client.send(CreatePartitionsRequest(topics=[
            cp(name="assign", count=3, assignments=[assignment(broker_ids=[1])]),
            cp(name="missing", count=3, assignments=None)]), version)
    assert [(r.name, r.error_code) for r in response.results] == [
        ("grow", 0), ("assign", 0), ("shrink-me", 37)]
    topics = kafka_cluster.state.topics
    assert len(topics["grow"].partitions) == 5
    assert all(len(p.replicas) == 2 for p in topics["grow"].partitions)
    assert kafka_cluster.state.logs.partition("grow", 4) is not None
    assert topics["assign"].partitions[1].replicas == [2, 1]
    assert [(r.name, r.error_code) for r in wrong.results] == [("assign", 39), ("missing", 3)]


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
async def test_describe_topic_configs(kafka_cluster: EmbeddedCluster, version: int) -> None:
    kafka_cluster.state.create_topic("described", 1, 1, {"retention.ms": "5000"})
    request = DescribeConfigsRequest(
        resources=[Resource(resource_type=TOPIC, resource_name="described",
                            configuration_keys=None),
                   Resource(resource_type=TOPIC, resource_name="described",
                            configuration_keys=["retention.ms", "segment.bytes"]),
                   Resource(resource_type=TOPIC, resource_name="missing",
                            configuration_keys=None)],
        include_synonyms=version >= 1, include_documentation=version >= 3)
    async with wire(kafka_cluster) as client:
        response = await client.send(request, version)
    every, some, missing = response.results
    assert every.error_code == 0
    configs = {c.name: c for c in every.configs}
    assert {"retention.ms", "cleanup.policy", "min.insync.replicas", "max.message.bytes",
            "segment.bytes", "message.timestamp.type", "retention.bytes"} <= set(configs)
    retention = configs["retention.ms"]
    assert retention.value == "5000"
    assert configs["segment.bytes"].value == str(1 << 30)
    if version == 0:
        assert (retention.is_default, configs["segment.bytes"].is_default) == (False, True)
    else:
        assert retention.config_source == 1
        assert [(s.name, s.value, s.source) for s in retention.synonyms] == [
            ("retention.ms", "5000", 1), ("log.retention.ms", "604800000", 5)]
    if version >= 3:
        assert retention.config_type == 5  # LONG
        assert retention.documentation
    assert sorted(c.name for c in some.configs) == ["retention.ms", "segment.bytes"]
    assert missing.error_code == 3


async def test_describe_broker_configs(kafka_cluster: EmbeddedCluster) -> None:
    async with wire(kafka_cluster) as client:
        response = await client.send(DescribeConfigsRequest(resources=[
            Resource(resource_type=BROKER, resource_name="1", configuration_keys=None),
            Resource(resource_type=BROKER, resource_name="9", configuration_keys=None),
        ]), 4)
    node, missing = response.results
    configs = {c.name: c.value for c in node.configs}
    assert configs["broker.id"] == "1"
    assert configs["auto.create.topics.enable"] == "true"
    assert configs["num.partitions"] == "1"
    assert configs["log.retention.ms"] == "604800000"
    assert missing.error_code == 42


@pytest.mark.parametrize("version", [0, 1, 2])
async def test_alter_configs_replaces_the_set(kafka_cluster: EmbeddedCluster,
                                              version: int) -> None:
    kafka_cluster.state.create_topic("altered", 1, 1, {"retention.ms": "5000"})
    resource = AlterConfigsRequest.AlterConfigsResource
    entry = resource.AlterableConfig
    async with wire(kafka_cluster) as client:
        response = await client.send(AlterConfigsRequest(resources=[
            resource(resource_type=TOPIC, resource_name="altered",
                     configs=[entry(name="max.message.bytes", value="2048")]),
            resource(resource_type=TOPIC, resource_name="altered",
                     configs=[entry(name="segment.ms", value="-3")]),
            resource(resource_type=BROKER, resource_name="0", configs=[]),
        ]), version)
    assert [r.error_code for r in response.responses] == [0, 40, 42]
    assert kafka_cluster.state.topics["altered"].configs == {"max.message.bytes": "2048"}
    log = kafka_cluster.state.logs.partition("altered", 0)
    assert log is not None and log.config.max_message_bytes == 2048


@pytest.mark.parametrize("version", [0, 1])
async def test_incremental_alter_configs(kafka_cluster: EmbeddedCluster, version: int) -> None:
    kafka_cluster.state.create_topic("inc", 1, 1, {"retention.ms": "5000",
                                                   "segment.bytes": "4096"})
    resource = IncrementalAlterConfigsRequest.AlterConfigsResource
    entry = resource.AlterableConfig
    SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
    async with wire(kafka_cluster) as client:
        ok = await client.send(IncrementalAlterConfigsRequest(resources=[resource(
            resource_type=TOPIC, resource_name="inc", configs=[
                entry(name="retention.ms", config_operation=SET, value="7000"),
                entry(name="segment.bytes", config_operation=DELETE, value=None),
                entry(name="cleanup.policy", config_operation=APPEND, value="compact"),
            ])]), version)
        subtract = await client.send(IncrementalAlterConfigsRequest(resources=[resource(
            resource_type=TOPIC, resource_name="inc", configs=[
                entry(name="cleanup.policy", config_operation=SUBTRACT, value="delete")])]),
            version)
        bad = await client.send(IncrementalAlterConfigsRequest(resources=[
            resource(resource_type=TOPIC, resource_name="inc", configs=[
                entry(name="retention.ms", config_operation=APPEND, value="1")]),
            resource(resource_type=TOPIC, resource_name="inc", configs=[
                entry(name="retention.ms", config_operation=SET, value="1"),
                entry(name="retention.ms", config_operation=DELETE, value=None)]),
            resource(resource_type=TOPIC, resource_name="gone", configs=[]),
        ], validate_only=True), version)
        dry = await client.send(IncrementalAlterConfigsRequest(resources=[resource(
            resource_type=TOPIC, resource_name="inc", configs=[
                entry(name="retention.ms", config_operation=SET, value="1")])],
            validate_only=True), version)
    assert ok.responses[0].error_code == 0
    assert subtract.responses[0].error_code == 0
    assert [r.error_code for r in bad.responses] == [40, 42, 3]
    assert dry.responses[0].error_code == 0
    assert kafka_cluster.state.topics["inc"].configs == {"retention.ms": "7000",
                                                        "cleanup.policy": "compact"}


@pytest.mark.parametrize("version", [0, 1])
async def test_describe_cluster(kafka_cluster: EmbeddedCluster, version: int) -> None:
    async with wire(kafka_cluster, 1) as client:
        response = await client.send(DescribeClusterRequest(
            include_cluster_authorized_operations=True), version)
        if version >= 1:
            controllers = await client.send(DescribeClusterRequest(endpoint_type=2), version)
            assert controllers.error_code == 115
    assert response.error_code == 0
    assert response.cluster_id == kafka_cluster.state.cluster_id
    assert response.controller_id == 0
    assert [(b.broker_id, b.port) for b in response.brokers] == [
        (n.node_id, n.port) for n in kafka_cluster.state.nodes.values()]
