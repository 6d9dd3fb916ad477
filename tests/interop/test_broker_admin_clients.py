"""Admin clients nobody here wrote, against a 3-node EmbeddedCluster.

confluent-kafka (librdkafka) and kafka-python block, so they get a
``BlockingEmbeddedCluster``; aiokafka is asyncio-only and runs on the test's loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from streamclient.broker import BlockingEmbeddedCluster, EmbeddedCluster

pytestmark = pytest.mark.interop

TIMEOUT_S = 15


@pytest.fixture
def cluster() -> Iterator[BlockingEmbeddedCluster]:
    with BlockingEmbeddedCluster(3, group_initial_rebalance_delay_ms=0) as running:
        yield running
    assert running.errors == []


def test_confluent_kafka_admin_client(cluster: BlockingEmbeddedCluster) -> None:
    from confluent_kafka import KafkaException, TopicCollection
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        NewPartitions,
        NewTopic,
    )

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    futures = admin.create_topics(
        [NewTopic("ck-topic", num_partitions=3, replication_factor=2,
                  config={"retention.ms": "60000"}),
         NewTopic("ck-other", num_partitions=1, replication_factor=3)],
        operation_timeout=10)
    for future in futures.values():
        future.result(timeout=TIMEOUT_S)

    metadata = admin.list_topics(timeout=TIMEOUT_S)
    assert sorted(metadata.brokers) == [0, 1, 2]
    assert metadata.cluster_id == cluster.state.cluster_id
    topic = metadata.topics["ck-topic"]
    assert sorted(topic.partitions) == [0, 1, 2]
    state = cluster.state.topics["ck-topic"]
    for index, partition in topic.partitions.items():
        assert partition.leader == state.partitions[index].leader
        assert partition.replicas == state.partitions[index].replicas

    duplicate = admin.create_topics([NewTopic("ck-topic", 1, 1)])["ck-topic"]
    with pytest.raises(KafkaException) as exc:
        duplicate.result(timeout=TIMEOUT_S)
    assert exc.value.args[0].code() == 36  # TOPIC_ALREADY_EXISTS

    resource = ConfigResource("topic", "ck-topic")
    described = admin.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)
    assert described["retention.ms"].value == "60000"
    assert described["cleanup.policy"].value == "delete"

    change = ConfigResource("topic", "ck-topic", incremental_configs=[
        ConfigEntry("retention.ms", "120000",
                    incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([change])[change].result(timeout=TIMEOUT_S)
    assert cluster.state.topics["ck-topic"].configs["retention.ms"] == "120000"

    grown = admin.create_partitions([NewPartitions("ck-topic", 5)])["ck-topic"]
    grown.result(timeout=TIMEOUT_S)
    assert len(cluster.state.topics["ck-topic"].partitions) == 5

    description = admin.describe_cluster().result(timeout=TIMEOUT_S)
    assert sorted(node.id for node in description.nodes) == [0, 1, 2]
    assert description.cluster_id == cluster.state.cluster_id

    topics = admin.describe_topics(TopicCollection(["ck-other"]))
    other = topics["ck-other"].result(timeout=TIMEOUT_S)
    assert len(other.partitions) == 1 and len(other.partitions[0].replicas) == 3

    for future in admin.delete_topics(["ck-topic", "ck-other"],
                                      operation_timeout=10).values():
        future.result(timeout=TIMEOUT_S)
    assert "ck-topic" not in cluster.state.topics
    deadline = time.monotonic() + TIMEOUT_S
    while "ck-topic" in admin.list_topics(timeout=TIMEOUT_S).topics:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_kafka_python_admin_client(cluster: BlockingEmbeddedCluster) -> None:
    from kafka.admin import (
        ConfigResource,
        ConfigResourceType,
        KafkaAdminClient,
        NewPartitions,
        NewTopic,
    )
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers,
                             request_timeout_ms=TIMEOUT_S * 1000)
    try:
        admin.create_topics([NewTopic("kp-topic", num_partitions=2, replication_factor=3,
                                      topic_configs={"cleanup.policy": "compact"})])
        assert "kp-topic" in admin.list_topics()
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic("kp-topic", num_partitions=1,
                                          replication_factor=1)])
        [described] = admin.describe_topics(["kp-topic"])
        assert described["error_code"] == 0
        assert len(described["partitions"]) == 2
        for partition in described["partitions"]:
            assert len(partition["replica_nodes"]) == 3

        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC,
                                                         "kp-topic")])
        entries = configs["topic"]["kp-topic"]
        assert entries["cleanup.policy"]["value"] == "compact"
        assert entries["cleanup.policy"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"

        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-topic",
                                            configs={"retention.ms": "1000"})])
        assert cluster.state.topics["kp-topic"].configs["retention.ms"] == "1000"

        admin.create_partitions({"kp-topic": NewPartitions(total_count=4)})
        assert len(cluster.state.topics["kp-topic"].partitions) == 4

        cluster_info = admin.describe_cluster()
        assert sorted(b["broker_id"] for b in cluster_info["brokers"]) == [0, 1, 2]
        assert cluster_info["cluster_id"] == cluster.state.cluster_id

        admin.delete_topics(["kp-topic"])
        assert "kp-topic" not in cluster.state.topics
    finally:
        admin.close()


def _config_entries(responses: object) -> dict[str, str]:
    """Config name -> value from aiokafka's DescribeConfigs responses."""
    entries: dict[str, str] = {}
    items = responses if isinstance(responses, list) else [responses]
    for response in items:
        for result in response.resources:  # type: ignore[attr-defined]
            error_code, _message, _type, _name, configs = result[:5]
            assert error_code == 0
            for config in configs:
                entries[config[0]] = config[1]
    return entries


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_aiokafka_admin_client(anyio_backend: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    async with EmbeddedCluster(3) as running:
        admin = AIOKafkaAdminClient(bootstrap_servers=running.bootstrap_servers,
                                    request_timeout_ms=TIMEOUT_S * 1000)
        await admin.start()
        try:
            await admin.create_topics([NewTopic("aio-topic", num_partitions=3,
                                                replication_factor=2)])
            assert "aio-topic" in await admin.list_topics()
            [described] = await admin.describe_topics(["aio-topic"])
            assert described["error_code"] == 0 and len(described["partitions"]) == 3

            configs = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, "aio-topic")])
            entries = _config_entries(configs)
            assert entries["retention.ms"] == "604800000"

            await admin.alter_configs([ConfigResource(
                ConfigResourceType.TOPIC, "aio-topic", configs={"retention.ms": "5000"})])
            assert running.state.topics["aio-topic"].configs == {"retention.ms": "5000"}

            await admin.create_partitions({"aio-topic": NewPartitions(total_count=6)})
            assert len(running.state.topics["aio-topic"].partitions) == 6

            cluster_info = await admin.describe_cluster()
            assert sorted(b["node_id"] for b in cluster_info["brokers"]) == [0, 1, 2]

            await admin.delete_topics(["aio-topic"])
            assert "aio-topic" not in running.state.topics
        finally:
            await admin.close()
    assert running.errors == []
