"""ClusterClient against scripted brokers on loopback (asyncio and trio).

The scripted cluster answers ApiVersions, Metadata and FindCoordinator from state the
test controls, and can misbehave on purpose: hang up, hold a response back, advertise an
older leader epoch, answer coordinator lookups with errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute

from streamclient.cluster import ClusterClient, ConnectionGroup, CoordinatorType
from streamclient.errors import (
    GroupAuthorizationFailedError,
    GroupCoordinatorNotAvailableError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    NodeNotReadyError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)
from streamclient.protocol.framing import decode_request, encode_response
from streamclient.protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from streamclient.protocol.messages.find_coordinator import (
    FindCoordinatorRequest,
    FindCoordinatorResponse,
)
from streamclient.protocol.messages.metadata import MetadataRequest, MetadataResponse
from streamclient.structs import TopicPartition

pytestmark = pytest.mark.anyio

BOUND_S = 10  # no test step may hang longer than this
METADATA = MetadataRequest.API_KEY
FIND_COORDINATOR = FindCoordinatorRequest.API_KEY


@dataclass
class FakeCluster:
    """State shared by the scripted brokers; tests change it between requests."""

    ports: dict[int, int] = field(default_factory=dict)
    # topic → [(leader, leader_epoch)] per partition
    topics: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    topic_errors: dict[str, int] = field(default_factory=dict)
    ranges: dict[int, tuple[int, int]] = field(
        default_factory=lambda: {18: (0, 4), 3: (0, 12), 10: (0, 4)})
    # node → port it advertises instead of its own (to make it unreachable by id)
    advertised_ports: dict[int, int] = field(default_factory=dict)
    coordinator: int = 1
    coordinator_errors: list[int] = field(default_factory=list)  # popped per answer
    auto_create: bool = False
    hang_up: set[int] = field(default_factory=set)  # nodes that drop their next request
    hold_metadata: anyio.Event | None = None  # Metadata answers wait for this
    requests: list[tuple[int, int, int, Any]] = field(default_factory=list)
    connections: dict[int, int] = field(default_factory=dict)  # accepted per node

    def count(self, api_key: int) -> int:
        return sum(1 for r in self.requests if r[1] == api_key)

    def metadata(self, request: MetadataRequest, version: int) -> MetadataResponse:
        Topic = MetadataResponse.MetadataResponseTopic
        Partition = Topic.MetadataResponsePartition
        names = (sorted(set(self.topics) | set(self.topic_errors)) if request.topics is None
                 else [t.name for t in request.topics])
        topics = []
        for name in names:
            if name not in self.topics and name not in self.topic_errors and self.auto_create \
                    and (version < 4 or request.allow_auto_topic_creation):
                self.topics[name] = [(0, 0)]
            if name in self.topic_errors:
                topics.append(Topic(name=name, error_code=self.topic_errors[name]))
            elif name in self.topics:
                topics.append(Topic(name=name, error_code=0, partitions=[
                    Partition(error_code=0 if leader >= 0 else 5, partition_index=i,
                              leader_id=leader, leader_epoch=epoch,
                              replica_nodes=sorted(self.ports), isr_nodes=sorted(self.ports))
                    for i, (leader, epoch) in enumerate(self.topics[name])]))
            else:
                topics.append(Topic(name=name, error_code=3))
        brokers = [MetadataResponse.MetadataResponseBroker(
            node_id=n, host="127.0.0.1", port=self.advertised_ports.get(n, p))
            for n, p in sorted(self.ports.items())]
        return MetadataResponse(brokers=brokers, controller_id=0, cluster_id="fake",
                                topics=topics)

    def find_coordinator(self, request: FindCoordinatorRequest,
                         version: int) -> FindCoordinatorResponse:
        keys = request.coordinator_keys if version >= 4 else [request.key]
        answers = []
        for key in keys:
            code = self.coordinator_errors.pop(0) if self.coordinator_errors else 0
            node = self.coordinator if code == 0 else -1
            answers.append((key, code, node))
        if version >= 4:
            return FindCoordinatorResponse(coordinators=[
                FindCoordinatorResponse.Coordinator(
                    key=key, error_code=code, node_id=node, host="127.0.0.1",
                    port=self.ports.get(node, -1))
                for key, code, node in answers])
        [(_key, code, node)] = answers
        return FindCoordinatorResponse(error_code=code, node_id=node, host="127.0.0.1",
                                       port=self.ports.get(node, -1))


async def serve_node(cluster: FakeCluster, node_id: int, stream: anyio.abc.ByteStream) -> None:
    cluster.connections[node_id] = cluster.connections.get(node_id, 0) + 1
    buf = bytearray()

    async def read_frame() -> bytes:
        while True:
            if len(buf) >= 4:
                size = int.from_bytes(buf[:4], "big")
                if len(buf) >= 4 + size:
                    frame = bytes(buf[4:4 + size])
                    del buf[:4 + size]
                    return frame
            buf.extend(await stream.receive())

    while True:
        header, request = decode_request(await read_frame())
        key, version = header.request_api_key, header.request_api_version
        if key == ApiVersionsRequest.API_KEY:
            response: Any = ApiVersionsResponse(api_keys=[
                ApiVersionsResponse.ApiVersion(api_key=k, min_version=lo, max_version=hi)
                for k, (lo, hi) in sorted(cluster.ranges.items())])
        else:
            cluster.requests.append((node_id, key, version, request))
            if node_id in cluster.hang_up:
                cluster.hang_up.discard(node_id)
                return
            if key == METADATA:
                if cluster.hold_metadata is not None:
                    await cluster.hold_metadata.wait()
                response = cluster.metadata(request, version)
            elif key == FIND_COORDINATOR:
                response = cluster.find_coordinator(request, version)
            else:
                raise AssertionError(f"the fake broker does not serve API {key}")
        await stream.send(encode_response(response, version, header.correlation_id, key))


@asynccontextmanager
async def fake_cluster(nodes: int = 3) -> AsyncIterator[FakeCluster]:
    cluster = FakeCluster()
    # listeners are closed after the task group has cancelled their serve tasks
    async with AsyncExitStack() as stack:
        listeners = []
        for node_id in range(nodes):
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
            await stack.enter_async_context(listener)
            listeners.append((node_id, listener))
            cluster.ports[node_id] = listener.extra(SocketAttribute.local_port)
        tg = await stack.enter_async_context(anyio.create_task_group())
        for node_id, listener in listeners:

            async def handle(stream: anyio.abc.ByteStream, node_id: int = node_id) -> None:
                async with stream:
                    with suppress(anyio.EndOfStream, anyio.BrokenResourceError,
                                  anyio.ClosedResourceError):
                        await serve_node(cluster, node_id, stream)

            tg.start_soon(listener.serve, handle)
        try:
            yield cluster
        finally:
            tg.cancel_scope.cancel()


async def closed_port() -> int:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = int(listener.extra(SocketAttribute.local_port))
    await listener.aclose()
    return port


def bootstrap(cluster: FakeCluster, node_id: int = 0) -> str:
    return f"127.0.0.1:{cluster.ports[node_id]}"


def client_for(cluster: FakeCluster, **kwargs: Any) -> ClusterClient:
    kwargs.setdefault("bootstrap_servers", bootstrap(cluster))
    kwargs.setdefault("request_timeout_ms", 5_000)
    kwargs.setdefault("retry_backoff_ms", 1)
    kwargs.setdefault("reconnect_backoff_ms", 1)
    return ClusterClient(random_source=lambda: 0.5, **kwargs)


async def wait_until(predicate: Callable[[], bool]) -> None:
    with anyio.fail_after(BOUND_S):
        while not predicate():
            await anyio.sleep(0.001)


def metadata_for(*names: str) -> MetadataRequest:
    return MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=n) for n in names])


# --- bootstrap --------------------------------------------------------------------------


async def test_bootstrap_skips_dead_address_and_keeps_the_connection() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster() as cluster:
            servers = [f"127.0.0.1:{await closed_port()}", bootstrap(cluster, 1)]
            async with client_for(cluster, bootstrap_servers=servers) as client:
                assert [n.node_id for n in client.metadata.brokers()] == [0, 1, 2]
                assert client.metadata.cluster_id == "fake"
                # the bootstrap connection now serves node 1: no second connection
                assert client.is_ready(1)
                await client.send(1, metadata_for())
                assert cluster.connections == {1: 1}


async def test_bootstrap_fails_when_no_server_answers_and_can_be_retried() -> None:
    with anyio.fail_after(BOUND_S):
        dead = [f"127.0.0.1:{await closed_port()}" for _ in range(2)]
        client = ClusterClient(bootstrap_servers=dead, request_timeout_ms=2000)
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap from"):
            await client.start()
        with pytest.raises(IllegalStateError, match="not started"):
            await client.send(0, metadata_for())
        async with fake_cluster(1) as cluster:
            retry = client_for(cluster, bootstrap_servers=[*dead, bootstrap(cluster)])
            async with retry:
                assert retry.metadata.brokers()[0].port == cluster.ports[0]


# --- connections ------------------------------------------------------------------------


async def test_broker_hang_up_fails_the_send_and_the_next_send_reconnects() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster() as cluster, client_for(cluster) as client:
            await client.send(2, metadata_for())
            assert cluster.connections[2] == 1
            cluster.hang_up.add(2)
            before = client.metadata.update_requested
            with pytest.raises(KafkaConnectionError):
                await client.send(2, metadata_for())
            assert not before and client.metadata.update_requested
            assert not client.is_ready(2)
            response = await client.send(2, metadata_for())
            assert [b.node_id for b in response.brokers] == [0, 1, 2]
            assert cluster.connections[2] == 2


async def test_failed_connects_back_off() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster(2) as cluster:
            cluster.advertised_ports[1] = await closed_port()
            async with client_for(cluster, reconnect_backoff_ms=300,
                                  reconnect_backoff_max_ms=1000) as client:
                started = anyio.current_time()
                with pytest.raises(KafkaConnectionError):
                    await client.send(1, metadata_for())
                first = anyio.current_time() - started
                assert first < 0.25
                with pytest.raises(KafkaConnectionError):
                    await client.send(1, metadata_for())
                # the second attempt waited the 300 ms backoff (jitter pinned to none)
                assert anyio.current_time() - started >= 0.29
                # a broker we cannot reach is not chosen for "any broker" traffic
                assert client.least_loaded_node() == 0


async def test_lifecycle_misuse_is_a_clear_error() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster(1) as cluster, client_for(cluster) as client:
            with pytest.raises(IllegalStateError, match="started"):
                await client.start()
            with pytest.raises(TypeError):
                await client.refresh_metadata("one-topic")
            with pytest.raises(TypeError):
                await client.coordinators("g")
        with pytest.raises(IllegalStateError, match="closed"):
            await client.send_to_any(metadata_for())
        with pytest.raises(IllegalStateError, match="closed"):
            await client.start()


async def test_unknown_node_is_not_ready() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster(1) as cluster, client_for(cluster) as client:
            with pytest.raises(NodeNotReadyError):
                await client.send(42, metadata_for())


async def test_coordination_group_has_its_own_connection() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster(1) as cluster, client_for(cluster) as client:
            await client.send(0, metadata_for())
            await client.send(0, metadata_for(), group=ConnectionGroup.COORDINATION)
            assert cluster.connections[0] == 2
            assert client.connection(0) is not client.connection(
                0, ConnectionGroup.COORDINATION)


async def test_idle_connections_are_closed_before_reuse() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster(1) as cluster, \
                client_for(cluster, connections_max_idle_ms=100) as client:
            await client.send(0, metadata_for())
            old = client.connection(0)
            await anyio.sleep(0.25)
            await client.send(0, metadata_for())
            assert old is not None and old.closed
            assert cluster.connections[0] == 2


async def test_api_versions_per_node() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster(2) as cluster:
            cluster.ranges[3] = (0, 9)
            async with client_for(cluster) as client:
                assert (await client.api_versions(1))[3] == (0, 9)
                assert await client.version_for(1, MetadataRequest) == 9
                assert await client.version_for(1, FIND_COORDINATOR) == 4


async def test_close_fails_pending_and_later_calls() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster(1) as cluster:
            client = client_for(cluster)
            await client.start()
            cluster.hold_metadata = anyio.Event()
            errors: list[BaseException] = []

            async def pending() -> None:
                try:
                    await client.send(0, metadata_for())
                except KafkaConnectionError as exc:
                    errors.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(pending)
                await wait_until(lambda: cluster.count(METADATA) == 2)
                await client.close()
            cluster.hold_metadata.set()
            assert len(errors) == 1
            await client.close()  # idempotent
            with pytest.raises(IllegalStateError, match="closed"):
                await client.refresh_metadata()


# --- metadata -----------------------------------------------------------------------------


async def test_concurrent_refreshes_share_one_request() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster() as cluster, client_for(cluster) as client:
            cluster.topics["t"] = [(1, 0)]
            client.metadata.add_topics(["t"])
            before = cluster.count(METADATA)
            cluster.hold_metadata = anyio.Event()
            results: list[int | None] = []

            async def refresh() -> None:
                md = await client.refresh_metadata()
                results.append(md.leader_for(TopicPartition("t", 0)))

            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(refresh)
                await wait_until(lambda: cluster.count(METADATA) == before + 1)
                await anyio.sleep(0.05)  # let every caller reach the shared refresh
                cluster.hold_metadata.set()
            assert results == [1] * 5
            assert cluster.count(METADATA) == before + 1


async def test_refresh_for_more_topics_waits_then_sends_its_own() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster() as cluster, client_for(cluster) as client:
            cluster.topics.update({"a": [(1, 0)], "b": [(2, 0)]})
            before = cluster.count(METADATA)
            cluster.hold_metadata = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.refresh_metadata, ["a"])
                await wait_until(lambda: cluster.count(METADATA) == before + 1)
                tg.start_soon(client.refresh_metadata, ["b"])
                await anyio.sleep(0.05)
                assert cluster.count(METADATA) == before + 1  # "b" waits for "a"'s
                cluster.hold_metadata.set()
            assert cluster.count(METADATA) == before + 2
            assert {t.name for t in cluster.requests[-1][3].topics} == {"a", "b"}
            assert client.metadata.leader_for(TopicPartition("b", 0)) == 2


async def test_cancelled_refresh_hands_over_to_a_waiter() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster() as cluster, client_for(cluster) as client:
            cluster.topics["t"] = [(2, 0)]
            client.metadata.add_topics(["t"])
            before = cluster.count(METADATA)
            cluster.hold_metadata = anyio.Event()
            got: list[int | None] = []

            async def waiter() -> None:
                md = await client.refresh_metadata()
                got.append(md.leader_for(TopicPartition("t", 0)))

            async with anyio.create_task_group() as tg:
                with anyio.CancelScope() as first:
                    async with anyio.create_task_group() as inner:
                        inner.start_soon(client.refresh_metadata)
                        await wait_until(lambda: cluster.count(METADATA) == before + 1)
                        tg.start_soon(waiter)
                        await anyio.sleep(0.05)
                        first.cancel()
                cluster.hold_metadata.set()
            # the waiter did not take the cancelled caller's missing answer: it sent its own
            assert got == [2]
            assert cluster.count(METADATA) == before + 2


async def test_leader_epoch_regression_is_ignored() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster() as cluster, client_for(cluster) as client:
            tp = TopicPartition("t", 0)
            cluster.topics["t"] = [(1, 5)]
            await client.refresh_metadata(["t"])
            assert client.metadata.leader_for(tp) == 1
            cluster.topics["t"] = [(2, 4)]  # a broker that has not seen epoch 5 yet
            await client.refresh_metadata()
            assert client.metadata.leader_for(tp) == 1
            assert client.metadata.leader_epoch_for(tp) == 5
            cluster.topics["t"] = [(2, 6)]
            await client.refresh_metadata()
            assert client.metadata.leader_for(tp) == 2


async def test_send_to_leader_refreshes_once_then_routes() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster() as cluster, client_for(cluster) as client:
            cluster.topics["t"] = [(2, 0), (-1, 0)]
            response = await client.send_to_leader(TopicPartition("t", 0), metadata_for())
            assert response.cluster_id == "fake"
            assert cluster.requests[-1][0] == 2  # went to the leader
            with pytest.raises(LeaderNotAvailableError):
                await client.send_to_leader(TopicPartition("t", 1), metadata_for())
            with pytest.raises(UnknownTopicOrPartitionError):
                await client.send_to_leader(TopicPartition("t", 7), metadata_for())
            with pytest.raises(UnknownTopicOrPartitionError):
                await client.leader(TopicPartition("nope", 0))


async def test_refresh_falls_back_to_bootstrap_servers() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster(1) as cluster, client_for(cluster) as client:
            dead = await closed_port()
            cluster.advertised_ports[0] = dead
            await client.refresh_metadata()  # on the bootstrap connection: learns a bad port
            assert client.metadata.broker(0) is not None
            assert client.metadata.broker(0).port == dead  # type: ignore[union-attr]
            assert client.connection(0) is None  # it leads to the old address
            before = cluster.count(METADATA)
            # the only known broker cannot be reached: the bootstrap address answers
            await client.refresh_metadata()
            assert cluster.count(METADATA) == before + 1
            cluster.advertised_ports.clear()
            await client.refresh_metadata()
            assert client.metadata.broker(0).port == cluster.ports[0]  # type: ignore
            await client.send(0, metadata_for())


async def test_maybe_refresh_only_when_due() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster(1) as cluster, \
                client_for(cluster, metadata_max_age_ms=60_000) as client:
            before = cluster.count(METADATA)
            assert not await client.maybe_refresh_metadata()
            client.metadata.request_update()
            assert await client.maybe_refresh_metadata()
            assert cluster.count(METADATA) == before + 1


async def test_wait_for_topic_auto_creates_and_fails_fast_when_denied() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster(1) as cluster, client_for(cluster) as client:
            cluster.auto_create = True
            assert await client.wait_for_topic("fresh", 2000) == {0}
            cluster.topic_errors["secret"] = 29
            with pytest.raises(TopicAuthorizationFailedError):
                await client.wait_for_topic("secret", 2000)
            cluster.auto_create = False
            started = anyio.current_time()
            with pytest.raises(KafkaTimeoutError, match="missing"):
                await client.wait_for_topic("missing", 300)
            assert anyio.current_time() - started < 2


async def test_no_auto_create_when_disabled() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster(1) as cluster, \
                client_for(cluster, allow_auto_topic_creation=False) as client:
            cluster.auto_create = True
            with pytest.raises(KafkaTimeoutError):
                await client.wait_for_topic("fresh", 200)
            assert "fresh" not in cluster.topics


# --- coordinators -------------------------------------------------------------------------


@pytest.mark.parametrize("find_coordinator_max", [3, 4])
async def test_coordinator_lookup_batches_when_supported(find_coordinator_max: int) -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster() as cluster:
            cluster.ranges[FIND_COORDINATOR] = (0, find_coordinator_max)
            cluster.coordinator = 2
            async with client_for(cluster) as client:
                found = await client.coordinators(["g1", "g2"])
                assert found == {"g1": 2, "g2": 2}
                lookups = [r for r in cluster.requests if r[1] == FIND_COORDINATOR]
                assert len(lookups) == (1 if find_coordinator_max >= 4 else 2)
                # cached
                assert await client.coordinator("g1") == 2
                assert cluster.count(FIND_COORDINATOR) == len(lookups)
                client.invalidate_coordinator("g1")
                cluster.coordinator = 0
                assert await client.coordinator("g1") == 0
                assert await client.coordinator("g2") == 2
                assert cluster.count(FIND_COORDINATOR) == len(lookups) + 1
                # transaction keys are a separate namespace
                assert await client.coordinator("g1", CoordinatorType.TRANSACTION) == 0
                assert cluster.requests[-1][3].key_type == 1


async def test_coordinator_retries_retriable_errors() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster() as cluster, client_for(cluster) as client:
            cluster.coordinator_errors = [15, 14, 16]
            assert await client.coordinator("g") == 1
            assert cluster.count(FIND_COORDINATOR) == 4
            cluster.coordinator_errors = [30]
            with pytest.raises(GroupAuthorizationFailedError):
                await client.coordinator("denied")
            cluster.coordinator_errors = [15] * 10_000
            with pytest.raises(GroupCoordinatorNotAvailableError):
                await client.coordinator("never", timeout_ms=200)


async def test_coordinator_found_by_its_find_coordinator_address() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster(2) as cluster, client_for(cluster) as client:
            node = await client.coordinator("g")
            response = await client.send(node, metadata_for(),
                                         group=ConnectionGroup.COORDINATION)
            assert cluster.requests[-1][0] == node == 1
            assert response.controller_id == 0


async def test_coordinator_needs_a_broker() -> None:
    with anyio.fail_after(BOUND_S):
        async with fake_cluster(1) as cluster, client_for(cluster) as client:
            cluster.coordinator = 0
            cluster.hang_up.add(0)
            # the lookup's connection drops; the retry reconnects and succeeds
            assert await client.coordinator("g", timeout_ms=3000) == 0
            assert cluster.connections[0] == 2

