"""ClusterClient against Tansu, an independent broker (asyncio and trio)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from streamclient.cluster import ClusterClient, ConnectionGroup
from streamclient.protocol.messages.create_topics import CreateTopicsRequest
from streamclient.protocol.messages.metadata import MetadataRequest
from streamclient.structs import TopicPartition

pytestmark = pytest.mark.anyio

BOUND_S = 30


def client_for(bootstrap: str | list[str], **kwargs: Any) -> ClusterClient:
    kwargs.setdefault("request_timeout_ms", 15_000)
    kwargs.setdefault("retry_backoff_ms", 20)
    return ClusterClient(bootstrap_servers=bootstrap, client_id="streamclient-interop",
                         **kwargs)


async def unused_port() -> int:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    await listener.aclose()
    return port


async def create_topic(client: ClusterClient, name: str, partitions: int) -> None:
    request = CreateTopicsRequest(timeout_ms=10_000, topics=[
        CreateTopicsRequest.CreatableTopic(name=name, num_partitions=partitions,
                                           replication_factor=1)])
    response = await client.send_to_any(request)
    assert [(t.name, t.error_code) for t in response.topics] == [(name, 0)]


async def test_bootstrap_past_a_dead_address(tansu_bootstrap: str) -> None:
    with anyio.fail_after(BOUND_S):
        dead = f"127.0.0.1:{await unused_port()}"
        async with client_for([dead, tansu_bootstrap]) as client:
            [broker] = client.metadata.brokers()
            assert f"{broker.host}:{broker.port}" == tansu_bootstrap
            assert client.metadata.cluster_id
            # the bootstrap connection was kept for the broker's node id
            assert client.is_ready(broker.node_id)


async def test_metadata_for_created_topics(tansu_bootstrap: str, topic_name: str) -> None:
    with anyio.fail_after(BOUND_S):
        async with client_for(tansu_bootstrap) as client:
            await create_topic(client, topic_name, 3)
            await client.refresh_metadata([topic_name])
            md = client.metadata
            [broker] = md.brokers()
            assert md.partitions_for_topic(topic_name) == {0, 1, 2}
            assert md.available_partitions_for_topic(topic_name) == {0, 1, 2}
            assert md.topic_id(topic_name) is not None and md.topic_id(topic_name).int
            for p in range(3):
                assert md.leader_for(TopicPartition(topic_name, p)) == broker.node_id
            led = md.partitions_for_broker(broker.node_id)
            assert led is not None
            assert {TopicPartition(topic_name, p) for p in range(3)} <= led


async def test_wait_for_topic_auto_creates(tansu_bootstrap: str, topic_name: str) -> None:
    with anyio.fail_after(BOUND_S):
        async with client_for(tansu_bootstrap) as client:
            partitions = await client.wait_for_topic(topic_name, timeout_ms=20_000)
            assert partitions
            assert client.metadata.topic_error(topic_name) is None


async def test_group_coordinator_lookup(tansu_bootstrap: str, topic_name: str) -> None:
    with anyio.fail_after(BOUND_S):
        async with client_for(tansu_bootstrap) as client:
            [broker] = client.metadata.brokers()
            found = await client.coordinators([f"{topic_name}-a", f"{topic_name}-b"])
            assert found == {f"{topic_name}-a": broker.node_id,
                             f"{topic_name}-b": broker.node_id}
            node = await client.coordinator(f"{topic_name}-a")
            response = await client.send(node, MetadataRequest(topics=[]),
                                         group=ConnectionGroup.COORDINATION)
            assert response.brokers


async def test_concurrent_refreshes_share_one_request(tansu_bootstrap: str,
                                                      topic_name: str) -> None:
    with anyio.fail_after(BOUND_S):
        async with client_for(tansu_bootstrap) as client:
            await create_topic(client, topic_name, 2)
            client.metadata.add_topics([topic_name])
            updates: list[int] = []
            client.metadata.add_listener(lambda md: updates.append(md.version))
            before = client.metadata.version
            seen: list[set[int] | None] = []

            async def refresh() -> None:
                md = await client.refresh_metadata()
                seen.append(md.partitions_for_topic(topic_name))

            async with anyio.create_task_group() as tg:
                for _ in range(6):
                    tg.start_soon(refresh)
            assert seen == [{0, 1}] * 6
            # six callers, one MetadataResponse taken
            assert client.metadata.version == before + 1
            assert updates == [before + 1]


async def test_dead_connection_is_replaced_on_next_send(tansu_bootstrap: str) -> None:
    with anyio.fail_after(BOUND_S):
        async with client_for(tansu_bootstrap) as client:
            [broker] = client.metadata.brokers()
            node = broker.node_id
            old = client.connection(node)
            assert old is not None
            await old.close()
            assert not client.is_ready(node)
            response = await client.send(node, MetadataRequest(topics=[]))
            assert [b.node_id for b in response.brokers] == [node]
            new = client.connection(node)
            assert new is not None and new is not old and new.connected
