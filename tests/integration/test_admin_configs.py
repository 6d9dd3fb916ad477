"""AIOKafkaAdminClient config calls against a 3-node EmbeddedCluster (asyncio and trio):
describe (topic and broker resources, each broker's on that broker), alter, incremental
alter, and their per-resource errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from streamclient.admin import (
    AIOKafkaAdminClient,
    AlterConfigOp,
    AlterConfigOpType,
    ConfigResource,
    ConfigResourceType,
    NewTopic,
)
from streamclient.broker import EmbeddedCluster
from streamclient.errors import (
    IllegalArgumentError,
    InvalidConfigurationError,
    UnknownTopicOrPartitionError,
)
from streamclient.protocol.messages.describe_configs import DescribeConfigsRequest

pytestmark = [pytest.mark.anyio, pytest.mark.kafka_cluster(3)]

BOUND_S = 30
UNKNOWN_TOPIC_OR_PARTITION = 3


@pytest.fixture
async def admin(kafka_cluster: EmbeddedCluster) -> AsyncIterator[AIOKafkaAdminClient]:
    async with AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap_servers,
                                   request_timeout_ms=5_000, retry_backoff_ms=10) as client:
        await client.create_topics([NewTopic("conf", 1, 1,
                                             topic_configs={"retention.ms": "60000"})],
                                   raise_on_error=True)
        yield client


def configs_of(response: object) -> dict[tuple[int, str], dict[str, str | None]]:
    return {(r.resource_type, r.resource_name): {c.name: c.value for c in r.configs}
            for r in response.results}  # type: ignore[attr-defined]


async def test_describe_configs_routes_broker_resources(
        admin: AIOKafkaAdminClient, kafka_cluster: EmbeddedCluster) -> None:
    observed = kafka_cluster.faults.observe(DescribeConfigsRequest)
    with anyio.fail_after(BOUND_S):
        responses = await admin.describe_configs([
            ConfigResource(ConfigResourceType.TOPIC, "conf"),
            ConfigResource("BROKER", "2", {"broker.id": None}),
            ConfigResource("broker", "1", {"broker.id": None}),
        ])
    # aiokafka's order: one response per broker resource's broker, then the rest
    assert [configs_of(r) for r in responses[:2]] == [
        {(4, "1"): {"broker.id": "1"}}, {(4, "2"): {"broker.id": "2"}}]
    topic = configs_of(responses[2])[(2, "conf")]
    assert topic["retention.ms"] == "60000" and topic["cleanup.policy"] == "delete"
    by_node = {r.node_id: [res.resource_name for res in r.request.resources]
               for r in observed.requests}
    assert by_node[1] == ["1"] and by_node[2] == ["2"]
    assert sorted(n for names in by_node.values() for n in names) == ["1", "2", "conf"]


async def test_describe_configs_filters_and_synonyms(admin: AIOKafkaAdminClient) -> None:
    with anyio.fail_after(BOUND_S):
        [response] = await admin.describe_configs(
            [ConfigResource("topic", "conf", {"retention.ms": None})],
            include_synonyms=True, include_documentation=True)
    [result] = response.results
    [entry] = result.configs
    assert (entry.name, entry.value) == ("retention.ms", "60000")
    assert entry.documentation
    assert entry.synonyms[0].name == "retention.ms"


async def test_describe_configs_errors(admin: AIOKafkaAdminClient) -> None:
    with anyio.fail_after(BOUND_S):
        [response] = await admin.describe_configs([ConfigResource("topic", "ghost")])
        assert [r.error_code for r in response.results] == [UNKNOWN_TOPIC_OR_PARTITION]
        with pytest.raises(UnknownTopicOrPartitionError, match="ghost"):
            await admin.describe_configs([ConfigResource("topic", "ghost")],
                                         raise_on_error=True)
    with pytest.raises(IllegalArgumentError, match="broker id"):
        await admin.describe_configs([ConfigResource("broker", "leader")])
    with pytest.raises(IllegalArgumentError, match="twice"):
        await admin.describe_configs([ConfigResource("topic", "conf"),
                                      ConfigResource("topic", "conf")])


async def test_alter_configs_replaces(admin: AIOKafkaAdminClient,
                                      kafka_cluster: EmbeddedCluster) -> None:
    with anyio.fail_after(BOUND_S):
        [response] = await admin.alter_configs(
            [ConfigResource("topic", "conf", {"cleanup.policy": "compact"})])
        assert [(r.resource_name, r.error_code) for r in response.responses] == [("conf", 0)]
        # AlterConfigs replaces the whole set: retention.ms is back to its default
        assert kafka_cluster.state.topics["conf"].configs == {"cleanup.policy": "compact"}

        [checked] = await admin.alter_configs(
            [ConfigResource("topic", "conf", {"cleanup.policy": "delete"})],
            validate_only=True)
        assert [r.error_code for r in checked.responses] == [0]
        assert kafka_cluster.state.topics["conf"].configs == {"cleanup.policy": "compact"}

        [bad] = await admin.alter_configs(
            [ConfigResource("topic", "conf", {"no.such.config": "1"})])
        assert [r.error_code for r in bad.responses] != [0]
        with pytest.raises(InvalidConfigurationError):
            await admin.alter_configs(
                [ConfigResource("topic", "conf", {"no.such.config": "1"})],
                raise_on_error=True)


async def test_incremental_alter_configs(admin: AIOKafkaAdminClient,
                                         kafka_cluster: EmbeddedCluster) -> None:
    key = (ConfigResourceType.TOPIC, "conf")
    with anyio.fail_after(BOUND_S):
        result = await admin.incremental_alter_configs([ConfigResource("topic", "conf", {
            "segment.ms": 3_600_000,
            "cleanup.policy": AlterConfigOp(AlterConfigOpType.APPEND, "compact"),
        })])
        assert result == {key: None}
        assert kafka_cluster.state.topics["conf"].configs == {
            "retention.ms": "60000", "segment.ms": "3600000",
            "cleanup.policy": "delete,compact"}

        await admin.incremental_alter_configs([ConfigResource("topic", "conf", {
            "retention.ms": None,
            "cleanup.policy": AlterConfigOp(AlterConfigOpType.SUBTRACT, "delete")})])
        assert kafka_cluster.state.topics["conf"].configs == {
            "segment.ms": "3600000", "cleanup.policy": "compact"}

        kept = await admin.incremental_alter_configs(
            [ConfigResource("topic", "ghost", {"retention.ms": "1"}),
             ConfigResource("topic", "conf", {"retention.ms": "5000"})],
            raise_on_error=False)
        assert isinstance(kept[(ConfigResourceType.TOPIC, "ghost")],
                          UnknownTopicOrPartitionError)
        assert kept[key] is None
        assert kafka_cluster.state.topics["conf"].configs["retention.ms"] == "5000"
        with pytest.raises(UnknownTopicOrPartitionError, match="ghost"):
            await admin.incremental_alter_configs(
                [ConfigResource("topic", "ghost", {"retention.ms": "1"})])
