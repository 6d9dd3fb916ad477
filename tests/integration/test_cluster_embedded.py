"""ClusterClient against the embedded 3-node broker (asyncio and trio): routing to leaders
across nodes, leader moves, a stopped node, coordinators and auto-created topics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from streamclient.broker import EmbeddedCluster
from streamclient.cluster import ClusterClient, ConnectionGroup
from streamclient.errors import KafkaConnectionError
from streamclient.protocol.messages.create_topics import CreateTopicsRequest
from streamclient.protocol.messages.heartbeat import HeartbeatRequest
from streamclient.protocol.messages.list_offsets import ListOffsetsRequest
from streamclient.structs import TopicPartition

pytestmark = pytest.mark.anyio

BOUND_S = 30
NOT_LEADER_OR_FOLLOWER = 6


@pytest.fixture
async def cluster(anyio_backend: str) -> AsyncIterator[EmbeddedCluster]:
    async with EmbeddedCluster(3, group_initial_rebalance_delay_ms=0,
                               offsets_topic_num_partitions=6) as running:
        yield running


def client_for(cluster: EmbeddedCluster, **kwargs: Any) -> ClusterClient:
    kwargs.setdefault("request_timeout_ms", 5_000)
    kwargs.setdefault("retry_backoff_ms", 10)
    kwargs.setdefault("reconnect_backoff_ms", 10)
    return ClusterClient(bootstrap_servers=cluster.bootstrap_servers, **kwargs)


async def create_topic(client: ClusterClient, name: str, partitions: int) -> None:
    request = CreateTopicsRequest(timeout_ms=5000, topics=[CreateTopicsRequest.CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=3)])
    controller = client.metadata.controller_id
    assert controller is not None
    response = await client.send(controller, request)
    assert [t.error_code for t in response.topics] == [0]


def list_offsets(tp: TopicPartition) -> ListOffsetsRequest:
    part = ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
        partition_index=tp.partition, timestamp=-1)
    return ListOffsetsRequest(replica_id=-1, topics=[
        ListOffsetsRequest.ListOffsetsTopic(name=tp.topic, partitions=[part])])


def error_of(response: Any) -> int:
    [topic] = response.topics
    [part] = topic.partitions
    return int(part.error_code)


async def test_routes_to_leaders_across_nodes(cluster: EmbeddedCluster) -> None:
    with anyio.fail_after(BOUND_S):
        async with client_for(cluster) as client:
            await create_topic(client, "spread", 6)
            assert await client.wait_for_topic("spread") == set(range(6))
            md = client.metadata
            leaders = {md.leader_for(TopicPartition("spread", p)) for p in range(6)}
            assert leaders == {0, 1, 2}
            for node in (0, 1, 2):
                led = md.partitions_for_broker(node)
                assert led is not None and {tp.partition for tp in led if tp.topic == "spread"}
            for p in range(6):
                tp = TopicPartition("spread", p)
                assert error_of(await client.send_to_leader(tp, list_offsets(tp))) == 0
                # any other replica refuses: the routing is what made it work
                other = next(n for n in (0, 1, 2) if n != md.leader_for(tp))
                response = await client.send(other, list_offsets(tp))
                assert error_of(response) == NOT_LEADER_OR_FOLLOWER
            assert all(client.is_ready(n) for n in (0, 1, 2))


async def test_leader_move_is_seen_after_refresh(cluster: EmbeddedCluster) -> None:
    with anyio.fail_after(BOUND_S):
        async with client_for(cluster) as client:
            await create_topic(client, "moving", 1)
            await client.wait_for_topic("moving")
            tp = TopicPartition("moving", 0)
            old_leader = client.metadata.leader_for(tp)
            old_epoch = client.metadata.leader_epoch_for(tp)
            assert old_leader is not None and old_epoch is not None
            new_leader = (old_leader + 1) % 3
            cluster.move_leader("moving", 0, new_leader)
            assert error_of(await client.send_to_leader(tp, list_offsets(tp))) == \
                NOT_LEADER_OR_FOLLOWER
            client.metadata.request_update()
            assert await client.maybe_refresh_metadata()
            assert client.metadata.leader_for(tp) == new_leader
            assert client.metadata.leader_epoch_for(tp) == old_epoch + 1  # type: ignore
            assert error_of(await client.send_to_leader(tp, list_offsets(tp))) == 0


async def test_stopped_node_fails_sends_but_metadata_still_refreshes(
        cluster: EmbeddedCluster) -> None:
    with anyio.fail_after(BOUND_S):
        async with client_for(cluster) as client:
            await create_topic(client, "survivor", 3)
            await client.wait_for_topic("survivor")
            for node in (0, 1, 2):
                await client.version_for(node, ListOffsetsRequest)
            await cluster.stop_node(2)
            with pytest.raises(KafkaConnectionError):
                await client.send(2, list_offsets(TopicPartition("survivor", 0)))
            await client.refresh_metadata()
            md = client.metadata
            assert 2 not in {md.leader_for(TopicPartition("survivor", p)) for p in range(3)}
            for p in range(3):
                tp = TopicPartition("survivor", p)
                assert error_of(await client.send_to_leader(tp, list_offsets(tp))) == 0
            assert client.metadata.broker(2) is None  # a stopped node leaves the metadata
            await cluster.start_node(2)
            await client.refresh_metadata()
            assert client.metadata.broker(2) is not None
            # the failed connection is replaced once the node is back
            await client.send(2, list_offsets(TopicPartition("survivor", 0)))
            assert client.is_ready(2)


async def test_group_coordinator_answers_on_the_coordination_connection(
        cluster: EmbeddedCluster) -> None:
    with anyio.fail_after(BOUND_S):
        async with client_for(cluster) as client:
            node = await client.coordinator("cluster-group")
            assert node in (0, 1, 2)
            heartbeat = HeartbeatRequest(group_id="cluster-group", generation_id=1,
                                         member_id="nobody")
            response = await client.send(node, heartbeat, group=ConnectionGroup.COORDINATION)
            # a coordinator answers about the group (not NOT_COORDINATOR, 16)
            assert response.error_code not in (15, 16)
            assert client.is_ready(node, ConnectionGroup.COORDINATION)


async def test_wait_for_topic_auto_creates(cluster: EmbeddedCluster) -> None:
    with anyio.fail_after(BOUND_S):
        async with client_for(cluster) as client:
            partitions = await client.wait_for_topic("made-on-demand")
            assert partitions
            assert client.metadata.available_partitions_for_topic("made-on-demand") == \
                partitions
