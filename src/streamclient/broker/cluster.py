"""``EmbeddedCluster``: N broker nodes in this process, each on its own loopback port.

One task group owns all background work: each node's listener with its connection
tasks, and a ticker that drives the coordinators' timers.  Leaving the ``async with``
cancels it all, so no task outlives the cluster.

``BlockingEmbeddedCluster`` runs one on a background thread's event loop for code that
blocks (confluent-kafka, kafka-python, sync tests).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar, overload

import anyio
import anyio.from_thread

from streamclient.broker.config import BrokerConfig
from streamclient.broker.faults import FaultInjector
from streamclient.broker.server import DEFAULT_MAX_FRAME_BYTES, BrokerNode
from streamclient.broker.state import (
    OFFSETS_TOPIC,
    TRANSACTION_STATE_TOPIC,
    Clock,
    ClusterState,
    PartitionState,
)
from streamclient.errors import IllegalStateError, KafkaConfigurationError

__all__ = ["BlockingEmbeddedCluster", "EmbeddedCluster"]

log = logging.getLogger("streamclient.broker")

T = TypeVar("T")

DEFAULT_TICK_INTERVAL_MS = 50


class EmbeddedCluster:
    """An in-process Kafka cluster speaking the real wire protocol.

    ``port=0`` binds free ports; ``port=P`` puts node ``i`` on ``P + i``.  Extra keyword
    arguments are :class:`~streamclient.broker.config.BrokerConfig` fields
    (``group_initial_rebalance_delay_ms=0``, ``offsets_topic_num_partitions=5``, …).
    Errors raised inside handlers or the ticker are logged and collected in ``errors``,
    so a test can assert none happened.
    """

    def __init__(
        self,
        nodes: int = 3,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_dir: str | None = None,
        auto_create_topics: bool = True,
        default_partitions: int = 1,
        default_replication_factor: int = 1,
        topic_defaults: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        cluster_id: str | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        tick_interval_ms: int = DEFAULT_TICK_INTERVAL_MS,
        **broker_config: Any,
    ) -> None:
        if nodes < 1:
            raise KafkaConfigurationError(f"a cluster needs at least one node, got {nodes}")
        if not 0 <= port <= 65535 or (port and port + nodes - 1 > 65535):
            raise KafkaConfigurationError(f"ports {port}..{port + nodes - 1} are out of range")
        if default_replication_factor > nodes:
            raise KafkaConfigurationError(
                f"default_replication_factor={default_replication_factor} exceeds the "
                f"{nodes} nodes")
        if max_frame_bytes < 1024:
            raise KafkaConfigurationError("max_frame_bytes must be at least 1024")
        try:
            config = BrokerConfig(
                auto_create_topics_enable=auto_create_topics,
                num_partitions=default_partitions,
                default_replication_factor=default_replication_factor,
                socket_request_max_bytes=max_frame_bytes,
                topic_defaults=dict(topic_defaults or {}),
                **broker_config,
            )
        except TypeError as exc:
            raise KafkaConfigurationError(str(exc)) from None
        self.node_count = nodes
        self.host = host
        self.port = port
        self.log_dir = log_dir
        self.tick_interval_ms = tick_interval_ms
        self.max_frame_bytes = max_frame_bytes
        self.faults = FaultInjector()
        self.errors: list[BaseException] = []
        self.state = ClusterState(config, clock=clock, cluster_id=cluster_id)
        self.nodes: dict[int, BrokerNode] = {}
        self._stack: contextlib.AsyncExitStack | None = None
        self._task_group: anyio.abc.TaskGroup | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> EmbeddedCluster:
        if self._stack is not None:
            raise IllegalStateError("the cluster is already running")
        from streamclient.broker.groups import GroupCoordinator
        from streamclient.broker.log import LogManager
        from streamclient.broker.txn import TransactionCoordinator

        state = self.state
        if self.log_dir is not None:
            from streamclient.broker.log.disk_manager import DiskLogManager

            disk = DiskLogManager(state, self.log_dir, retention_check_interval_ms=(
                state.config.log_retention_check_interval_ms))
            state.logs = disk
        else:
            state.logs = LogManager(state)
        state.faults = self.faults
        async with contextlib.AsyncExitStack() as stack:
            if self.log_dir is not None:
                # registered first, so it runs after the task group has stopped every node
                stack.callback(disk.close)
            self._task_group = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(self._task_group.cancel_scope.cancel)
            for node_id in range(self.node_count):
                node = BrokerNode(
                    node_id, state, host=self.host,
                    port=self.port + node_id if self.port else 0,
                    max_frame_bytes=self.max_frame_bytes, on_error=self.errors.append)
                port = await self._task_group.start(node.run)
                self.nodes[node_id] = node
                state.add_node(node_id, self.host, port)
            if self.log_dir is not None:
                disk.restore()
            state.ensure_internal_topic(OFFSETS_TOPIC)
            state.ensure_internal_topic(TRANSACTION_STATE_TOPIC)
            state.groups = GroupCoordinator(state)
            state.txns = TransactionCoordinator(state)
            if self.log_dir is not None:
                disk.load_coordinators()
            self._task_group.start_soon(self._tick_forever)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)
        self._task_group = None

    async def _tick_forever(self) -> None:
        while True:
            self.tick()
            await anyio.sleep(self.tick_interval_ms / 1000)

    def tick(self, now_ms: int | None = None) -> None:
        """Run the coordinators' timers and log retention once (the ticker calls this)."""
        now = self.state.clock.now_ms() if now_ms is None else now_ms
        for name in ("groups", "txns", "logs"):
            try:
                getattr(self.state, name).tick(now)
            except Exception as exc:
                log.exception("the %s tick failed", name)
                self.errors.append(exc)

    # -- addresses -----------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``"127.0.0.1:p0,127.0.0.1:p1,…"`` of the running nodes."""
        return ",".join(f"{n.host}:{n.port}" for n in self.state.nodes.values())

    def address(self, node_id: int) -> tuple[str, int]:
        node = self.state.nodes[node_id]
        return node.host, node.port

    # -- fault injection -----------------------------------------------------------------

    def _require_running(self) -> anyio.abc.TaskGroup:
        if self._task_group is None:
            raise IllegalStateError("the cluster is not running")
        return self._task_group

    async def stop_node(self, node_id: int) -> None:
        """Close the node's listener and connections; its partitions move to other replicas."""
        self._require_running()
        node = self._node(node_id)
        await node.stop()
        self.state.set_node_alive(node_id, False)

    async def start_node(self, node_id: int) -> None:
        """Restart a stopped node on its old port; it rejoins the ISRs it left."""
        task_group = self._require_running()
        node = self._node(node_id)
        if node.running:
            return
        await task_group.start(node.run)
        self.state.set_node_alive(node_id, True)

    def move_leader(self, topic: str, partition: int, to_node: int) -> PartitionState:
        """Make ``to_node`` the leader (with a new leader epoch)."""
        return self.state.move_leader(topic, partition, to_node)

    def _node(self, node_id: int) -> BrokerNode:
        node = self.nodes.get(node_id)
        if node is None:
            raise IllegalStateError(f"there is no node {node_id}")
        return node


class BlockingEmbeddedCluster:
    """An :class:`EmbeddedCluster` on a background thread, as a plain context manager.

    Node control and :meth:`call` hop to the cluster's loop; ``state`` and ``faults`` may
    be read directly (``faults`` is thread-safe; read ``state`` through :meth:`call` when
    it must be consistent with a running request).
    """

    def __init__(self, nodes: int = 3, *, backend: str = "asyncio", **kwargs: Any) -> None:
        self.cluster = EmbeddedCluster(nodes, **kwargs)
        self.backend = backend
        self._stack: contextlib.ExitStack | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None

    def __enter__(self) -> BlockingEmbeddedCluster:
        if self._stack is not None:
            raise IllegalStateError("the cluster is already running")
        with contextlib.ExitStack() as stack:
            portal = stack.enter_context(anyio.from_thread.start_blocking_portal(self.backend))
            # the task group must be entered and left by one task: the portal's
            # context-manager wrapper keeps both ends in the same task
            stack.enter_context(portal.wrap_async_context_manager(self.cluster))
            self._portal = portal
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        stack, self._stack = self._stack, None
        self._portal = None
        if stack is not None:
            stack.__exit__(exc_type, exc, tb)

    @property
    def bootstrap_servers(self) -> str:
        return self.cluster.bootstrap_servers

    @property
    def state(self) -> ClusterState:
        return self.cluster.state

    @property
    def faults(self) -> FaultInjector:
        return self.cluster.faults

    @property
    def errors(self) -> list[BaseException]:
        return self.cluster.errors

    # Two overloads because the portal awaits what an async ``fn`` returns: the caller
    # gets the coroutine's result, not the coroutine.
    @overload
    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T: ...

    @overload
    def call(self, fn: Callable[..., T], *args: Any) -> T: ...

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` (sync or async) on the cluster's event loop."""
        if self._portal is None:
            raise IllegalStateError("the cluster is not running")
        return self._portal.call(fn, *args)

    def stop_node(self, node_id: int) -> None:
        self.call(self.cluster.stop_node, node_id)

    def start_node(self, node_id: int) -> None:
        self.call(self.cluster.start_node, node_id)

    def move_leader(self, topic: str, partition: int, to_node: int) -> PartitionState:
        return self.call(self.cluster.move_leader, topic, partition, to_node)
