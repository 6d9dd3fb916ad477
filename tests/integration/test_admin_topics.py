"""AIOKafkaAdminClient topic calls against a 3-node EmbeddedCluster (asyncio and trio):
create / list / describe / delete topics, create partitions, the controller routing and
its NOT_CONTROLLER retry, error answers and raise_on_error, the lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from streamclient.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from streamclient.broker import EmbeddedCluster
from streamclient.errors import (
    IllegalArgumentError,
    IllegalStateError,
    InvalidPartitionsError,
    KafkaConnectionError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)
from streamclient.protocol.messages.create_partitions import CreatePartitionsRequest
from streamclient.protocol.messages.create_topics import CreateTopicsRequest
from streamclient.protocol.messages.delete_topics import DeleteTopicsRequest

pytestmark = [pytest.mark.anyio, pytest.mark.kafka_cluster(3)]

BOUND_S = 30
NOT_CONTROLLER = 41
TOPIC_ALREADY_EXISTS = 36
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_PARTITIONS = 37


@pytest.fixture
async def admin(kafka_cluster: EmbeddedCluster) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap_servers,
                                 request_timeout_ms=5_000, retry_backoff_ms=10)
    async with client:
        yield client


async def test_create_list_describe_delete(admin: AIOKafkaAdminClient,
                                           kafka_cluster: EmbeddedCluster) -> None:
    with anyio.fail_after(BOUND_S):
        response = await admin.create_topics([
            NewTopic("orders", 3, 2, topic_configs={"retention.ms": 60_000}),
            NewTopic("assigned", replica_assignments={0: [2, 1], 1: [1, 0]}),
        ])
        assert [(t.name, t.error_code) for t in response.topics] == [("orders", 0),
                                                                      ("assigned", 0)]
        state = kafka_cluster.state.topics
        assert len(state["orders"].partitions) == 3
        assert state["orders"].configs["retention.ms"] == "60000"
        assert [state["assigned"].partitions[p].replicas for p in (0, 1)] == [[2, 1], [1, 0]]

        topics = await admin.list_topics()
        assert {"orders", "assigned"} <= set(topics)
        assert "__consumer_offsets" in topics  # internal topics are listed, as aiokafka

        described = {d.name: d for d in await admin.describe_topics(["orders", "assigned"])}
        orders = described["orders"]
        assert orders.error_code == 0 and not orders.is_internal
        assert [p.partition for p in orders.partitions] == [0, 1, 2]
        for p in orders.partitions:
            assert p.leader == state["orders"].partitions[p.partition].leader
            assert len(p.replicas) == 2 and set(p.isr) == set(p.replicas)
        # aiokafka's dictionary spelling reads the same data
        assert orders["topic"] == "orders" and orders["error_code"] == 0
        assert orders["partitions"][1]["leader"] == orders.partitions[1].leader
        assert orders["partitions"][1]["replicas"] == list(orders.partitions[1].replicas)
        assert described["assigned"].partitions[0].replicas == (2, 1)

        deleted = await admin.delete_topics(["orders", "assigned"])
        assert [(r.name, r.error_code) for r in deleted.responses] == [("orders", 0),
                                                                      ("assigned", 0)]
        assert "orders" not in kafka_cluster.state.topics
        assert "orders" not in await admin.list_topics()


async def test_describe_all_and_missing_topics(admin: AIOKafkaAdminClient) -> None:
    with anyio.fail_after(BOUND_S):
        await admin.create_topics([NewTopic("present", 2, 1)], raise_on_error=True)
        everything = {d.name for d in await admin.describe_topics()}
        assert {"present", "__consumer_offsets"} <= everything

        [missing] = await admin.describe_topics(["absent"])
        assert missing.error_code == UNKNOWN_TOPIC_OR_PARTITION
        assert isinstance(missing.error, UnknownTopicOrPartitionError)
        with pytest.raises(UnknownTopicOrPartitionError, match="absent"):
            await admin.describe_topics(["present", "absent"], raise_on_error=True)
        # describing never auto-creates
        assert "absent" not in await admin.list_topics()
        assert await admin.describe_topics([]) == []


async def test_describe_cluster(admin: AIOKafkaAdminClient,
                                kafka_cluster: EmbeddedCluster) -> None:
    with anyio.fail_after(BOUND_S):
        cluster = await admin.describe_cluster()
    assert set(cluster) == {"throttle_time_ms", "brokers", "cluster_id", "controller_id"}
    assert cluster["cluster_id"] == kafka_cluster.state.cluster_id
    assert cluster["controller_id"] == kafka_cluster.state.controller_id
    assert [b["node_id"] for b in cluster["brokers"]] == [0, 1, 2]
    for broker in cluster["brokers"]:
        assert (broker["host"], broker["port"]) == kafka_cluster.address(broker["node_id"])


async def test_topic_errors_in_response_or_raised(admin: AIOKafkaAdminClient) -> None:
    with anyio.fail_after(BOUND_S):
        await admin.create_topics([NewTopic("taken", 1, 1)], raise_on_error=True)
        response = await admin.create_topics([NewTopic("taken", 1, 1), NewTopic("fresh", 1, 1)])
        codes = {t.name: t.error_code for t in response.topics}
        assert codes == {"taken": TOPIC_ALREADY_EXISTS, "fresh": 0}
        with pytest.raises(TopicAlreadyExistsError, match="taken"):
            await admin.create_topics([NewTopic("taken", 1, 1)], raise_on_error=True)

        # replication above the broker count: the broker's error, in the response
        [too_wide] = (await admin.create_topics([NewTopic("wide", 1, 5)])).topics
        assert too_wide.error_code != 0 and "wide" not in await admin.list_topics()

        gone = await admin.delete_topics(["never-made"])
        assert [r.error_code for r in gone.responses] == [UNKNOWN_TOPIC_OR_PARTITION]
        with pytest.raises(UnknownTopicOrPartitionError):
            await admin.delete_topics(["never-made"], raise_on_error=True)

        # validate_only checks and creates nothing
        checked = await admin.create_topics([NewTopic("dry", 2, 1)], validate_only=True)
        assert [t.error_code for t in checked.topics] == [0]
        assert "dry" not in await admin.list_topics()


async def test_create_partitions(admin: AIOKafkaAdminClient,
                                 kafka_cluster: EmbeddedCluster) -> None:
    with anyio.fail_after(BOUND_S):
        await admin.create_topics([NewTopic("grow", 2, 2)], raise_on_error=True)
        response = await admin.create_partitions(
            {"grow": NewPartitions(4, new_assignments=[[0, 1], [2, 0]])})
        assert [(r.name, r.error_code) for r in response.results] == [("grow", 0)]
        partitions = kafka_cluster.state.topics["grow"].partitions
        assert len(partitions) == 4
        assert (partitions[2].replicas, partitions[3].replicas) == ([0, 1], [2, 0])

        # aiokafka raises per-topic errors from create_partitions by default
        with pytest.raises(InvalidPartitionsError, match="grow"):
            await admin.create_partitions({"grow": NewPartitions(3)})
        kept = await admin.create_partitions({"grow": NewPartitions(3)}, raise_on_error=False)
        assert [r.error_code for r in kept.results] == [INVALID_PARTITIONS]
        with pytest.raises(UnknownTopicOrPartitionError):
            await admin.create_partitions({"nowhere": NewPartitions(2)})
        await admin.create_partitions({"grow": NewPartitions(6)}, validate_only=True)
        assert len(kafka_cluster.state.topics["grow"].partitions) == 4


async def test_controller_routing_and_not_controller_retry(
        admin: AIOKafkaAdminClient, kafka_cluster: EmbeddedCluster) -> None:
    controller = kafka_cluster.state.controller_id
    created = kafka_cluster.faults.observe(CreateTopicsRequest)
    grown = kafka_cluster.faults.observe(CreatePartitionsRequest)
    deleted = kafka_cluster.faults.observe(DeleteTopicsRequest)
    with anyio.fail_after(BOUND_S):
        # the controller refuses twice, as one that just lost its role would; the
        # client refreshes its metadata and sends again, only the refused topic
        rule = kafka_cluster.faults.control(CreateTopicsRequest, error=NOT_CONTROLLER,
                                            times=2)
        response = await admin.create_topics([NewTopic("routed", 2, 3)])
        assert rule.hits == 2
        assert [(t.name, t.error_code) for t in response.topics] == [("routed", 0)]
        await admin.create_partitions({"routed": NewPartitions(3)})
        await admin.delete_topics(["routed"], raise_on_error=True)
    assert len(created) == 3
    for observer in (created, grown, deleted):
        assert {r.node_id for r in observer.requests} == {controller}


async def test_not_controller_until_timeout(kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.faults.control(CreateTopicsRequest, error=NOT_CONTROLLER, times=None)
    async with AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap_servers,
                                   request_timeout_ms=600, retry_backoff_ms=20) as admin:
        with anyio.fail_after(BOUND_S):
            # every topic got an answer (the last NOT_CONTROLLER): the response says so
            response = await admin.create_topics([NewTopic("stuck", 1, 1)])
            assert [t.error_code for t in response.topics] == [NOT_CONTROLLER]
            kafka_cluster.faults.clear()
            kafka_cluster.faults.control(CreateTopicsRequest, drop="before", times=None)
            # no answer at all before the deadline: a timeout naming the call
            with pytest.raises(KafkaTimeoutError, match="CreateTopics"):
                await admin.create_topics([NewTopic("stuck", 1, 1)])


async def test_lifecycle(kafka_cluster: EmbeddedCluster) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap_servers)
    assert "new" in repr(admin)
    with pytest.raises(IllegalStateError, match="not started"):
        await admin.list_topics()
    with anyio.fail_after(BOUND_S):
        await admin.start()
        await admin.start()  # idempotent, as aiokafka's
        assert "__consumer_offsets" in await admin.list_topics()
        await admin.close()
        await admin.close()
    with pytest.raises(IllegalStateError, match="closed"):
        await admin.list_topics()
    with pytest.raises(IllegalStateError, match="closed"):
        await admin.start()


async def test_start_fails_clearly_and_can_be_retried() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}",
                                request_timeout_ms=1_000)
    with anyio.fail_after(BOUND_S), pytest.raises(KafkaConnectionError, match="bootstrap"):
        await admin.start()
    with pytest.raises(IllegalStateError, match="not started"):
        await admin.list_topics()
    await admin.close()


async def test_bad_arguments_fail_before_sending(admin: AIOKafkaAdminClient) -> None:
    with pytest.raises(TypeError, match="NewTopic"):
        await admin.create_topics(NewTopic("one", 1, 1))  # type: ignore[arg-type]
    with pytest.raises(IllegalArgumentError, match="twice"):
        await admin.create_topics([NewTopic("dup", 1, 1), NewTopic("dup", 2, 1)])
    with pytest.raises(TypeError, match="list of str"):
        await admin.delete_topics("orders")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="NewPartitions"):
        await admin.create_partitions({"t": 3})  # type: ignore[dict-item]
