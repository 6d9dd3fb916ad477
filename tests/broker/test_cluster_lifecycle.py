"""EmbeddedCluster lifecycle and node control, seen by a client through Metadata."""

from __future__ import annotations

import socket

import anyio
import pytest

from streamclient.broker import BlockingEmbeddedCluster, EmbeddedCluster
from streamclient.errors import IllegalStateError, KafkaConfigurationError
from streamclient.protocol.messages import MetadataRequest
from streamclient.testing import WireClient
from streamclient.testing.ports import free_port_run

Topic = MetadataRequest.MetadataRequestTopic


async def metadata(cluster: EmbeddedCluster, node: int, topic: str) -> object:
    async with WireClient(*cluster.address(node)) as client:
        return await client.send(MetadataRequest(topics=[Topic(name=topic)]), 12)


def accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.anyio
async def test_nodes_listen_on_their_own_ports(anyio_backend: str) -> None:
    async with EmbeddedCluster(3) as cluster:
        addresses = [cluster.address(i) for i in range(3)]
        assert len({port for _, port in addresses}) == 3
        assert cluster.bootstrap_servers == ",".join(f"{h}:{p}" for h, p in addresses)
        assert all(accepts(h, p) for h, p in addresses)
        assert {"__consumer_offsets", "__transaction_state"} <= set(cluster.state.topics)
    # leaving the context closed every listener
    assert not any(accepts(h, p) for h, p in addresses)


@pytest.mark.anyio
async def test_base_port_puts_node_i_on_p_plus_i(anyio_backend: str) -> None:
    base = free_port_run(2)
    async with EmbeddedCluster(2, port=base) as cluster:
        assert cluster.bootstrap_servers == f"127.0.0.1:{base},127.0.0.1:{base + 1}"
        assert accepts("127.0.0.1", base + 1)


@pytest.mark.anyio
@pytest.mark.kafka_cluster(nodes=3)
async def test_stop_and_start_node_are_visible_in_metadata(
        kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.state.create_topic("moving", 1, 3)
    leader = kafka_cluster.state.topics["moving"].partitions[0].leader
    observer = (leader + 1) % 3
    host, port = kafka_cluster.address(leader)

    await kafka_cluster.stop_node(leader)
    assert not accepts(host, port)
    after = await metadata(kafka_cluster, observer, "moving")
    assert leader not in [b.node_id for b in after.brokers]  # type: ignore[attr-defined]
    [part] = after.topics[0].partitions  # type: ignore[attr-defined]
    assert part.leader_id != leader and part.leader_id in part.isr_nodes
    assert leader not in part.isr_nodes and part.offline_replicas == [leader]
    assert part.leader_epoch == 1

    await kafka_cluster.start_node(leader)
    assert (host, port) == kafka_cluster.address(leader) and accepts(host, port)
    back = await metadata(kafka_cluster, leader, "moving")
    assert leader in [b.node_id for b in back.brokers]  # type: ignore[attr-defined]
    [part] = back.topics[0].partitions  # type: ignore[attr-defined]
    assert leader in part.isr_nodes and part.offline_replicas == []


@pytest.mark.anyio
@pytest.mark.kafka_cluster(nodes=3)
async def test_stopping_a_node_closes_its_connections(kafka_cluster: EmbeddedCluster) -> None:
    async with WireClient(*kafka_cluster.address(2), timeout_s=5) as client:
        await client.send(MetadataRequest(topics=[]), 1)
        await kafka_cluster.stop_node(2)
        assert await client.closed_by_peer()
    assert kafka_cluster.nodes[2].connections == 0


@pytest.mark.anyio
@pytest.mark.kafka_cluster(nodes=3)
async def test_move_leader_is_visible_in_metadata(kafka_cluster: EmbeddedCluster) -> None:
    kafka_cluster.state.create_topic("led", 1, 3)
    part = kafka_cluster.state.topics["led"].partitions[0]
    target = part.replicas[2]
    kafka_cluster.move_leader("led", 0, target)
    response = await metadata(kafka_cluster, 0, "led")
    [seen] = response.topics[0].partitions  # type: ignore[attr-defined]
    assert (seen.leader_id, seen.leader_epoch) == (target, 1)


@pytest.mark.anyio
async def test_node_control_needs_a_running_cluster(anyio_backend: str) -> None:
    cluster = EmbeddedCluster(1)
    with pytest.raises(IllegalStateError):
        await cluster.stop_node(0)
    async with cluster:
        with pytest.raises(IllegalStateError):
            await cluster.stop_node(5)
        with pytest.raises(IllegalStateError):
            await cluster.__aenter__()


@pytest.mark.parametrize("kwargs", [
    {"nodes": 0}, {"default_replication_factor": 4},
    {"no_such_setting": 1}, {"port": 70000}, {"max_frame_bytes": 10},
])
def test_bad_cluster_arguments(kwargs: dict[str, object]) -> None:
    nodes = kwargs.pop("nodes", 3)
    with pytest.raises(KafkaConfigurationError):
        EmbeddedCluster(nodes, **kwargs)  # type: ignore[arg-type]


def test_blocking_cluster_runs_on_a_background_thread() -> None:
    with BlockingEmbeddedCluster(2, default_replication_factor=2) as cluster:
        host, port = cluster.bootstrap_servers.split(",")[1].split(":")
        assert accepts(host, int(port))
        cluster.call(cluster.state.create_topic, "sync-topic", 1, 2)
        leader = cluster.state.topics["sync-topic"].partitions[0].leader
        cluster.stop_node(leader)
        assert cluster.state.topics["sync-topic"].partitions[0].leader == 1 - leader
        cluster.start_node(leader)
        cluster.move_leader("sync-topic", 0, leader)

        async def ask() -> object:
            async with WireClient(host, int(port)) as client:
                return await client.send(MetadataRequest(topics=[Topic(name="sync-topic")]),
                                         12)

        response = cluster.call(ask)
        assert response.topics[0].partitions[0].leader_id == leader  # type: ignore[attr-defined]
        assert cluster.errors == []
    assert not accepts(host, int(port))


def test_blocking_cluster_on_trio() -> None:
    with BlockingEmbeddedCluster(1, backend="trio") as cluster:
        host, port = cluster.bootstrap_servers.split(":")
        assert accepts(host, int(port))
        assert cluster.call(anyio.current_time) > 0
