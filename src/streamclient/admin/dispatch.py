"""Where the admin client's requests go, and how one call is retried.

``Dispatcher`` owns the admin client's ``ClusterClient`` and gives the call modules
(``topics``, ``configs``, ``groups``, ``partitions``, ``transactions``) what they share:
sending a request built for the version the broker speaks, picking the controller or any
broker, and running a call's attempts under one deadline (``retry.Retrier``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from streamclient.cluster import ClusterClient, ClusterConfig, ConnectionGroup
from streamclient.errors import IllegalStateError, KafkaError
from streamclient.net.backoff import ExponentialBackoff
from streamclient.protocol.message import Message
from streamclient.protocol.messages.metadata import MetadataRequest, MetadataResponse

from . import requests
from .config import AdminConfig
from .retry import Fatal, Retrier

__all__ = ["Dispatcher"]


class Dispatcher:
    """The admin client's connection to the cluster (created by ``start()``)."""

    def __init__(self, config: AdminConfig, cluster_config: ClusterConfig) -> None:
        self.config = config
        self._cluster_config = cluster_config
        self._backoff = ExponentialBackoff(config.retry_backoff_ms,
                                           config.retry_backoff_max_ms)
        self._cluster: ClusterClient | None = None
        self._retrier: Retrier | None = None
        self.state = "new"

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        if self.state == "started":
            return
        if self.state == "closed":
            raise IllegalStateError("the AIOKafkaAdminClient is closed; make a new one")
        if self.state == "starting":
            raise IllegalStateError("AIOKafkaAdminClient.start() is already running")
        self.state = "starting"
        # built here, not in __init__: the cluster client makes anyio primitives, which
        # need the running event loop
        cluster = ClusterClient(self._cluster_config)
        try:
            await cluster.start()
        except BaseException:
            self.state = "new"
            await cluster.close()
            raise
        self._cluster = cluster
        self._retrier = Retrier(cluster, self._backoff, self.config.request_timeout_ms)
        self.state = "started"

    async def close(self) -> None:
        self.state = "closed"
        if self._cluster is not None:
            await self._cluster.close()

    @property
    def cluster(self) -> ClusterClient:
        if self.state == "started" and self._cluster is not None:
            return self._cluster
        if self.state == "closed":
            raise IllegalStateError("the AIOKafkaAdminClient is closed")
        raise IllegalStateError("the AIOKafkaAdminClient is not started: call start() "
                                "first (or use `async with`)")

    @property
    def retrier(self) -> Retrier:
        self.cluster  # noqa: B018 - raises the lifecycle error
        assert self._retrier is not None
        return self._retrier

    # --- sending --------------------------------------------------------------------

    async def send(self, node_id: int, request_type: type[Message],
                   build: Callable[[int], Message], *, coordinator: bool = False) -> Any:
        """Build the request for the version ``node_id`` speaks, and send it there
        (coordinator traffic on its own connection)."""
        cluster = self.cluster
        version = await cluster.version_for(node_id, request_type)
        group = ConnectionGroup.COORDINATION if coordinator else ConnectionGroup.DEFAULT
        return await cluster.send(node_id, build(version), version, group=group)

    async def any_node(self) -> int:
        """The least loaded broker."""
        cluster = self.cluster
        node_id = cluster.least_loaded_node()
        if node_id is None:
            await cluster.refresh_metadata()
            node_id = cluster.least_loaded_node()
        if node_id is None:
            raise Fatal(KafkaError("the cluster metadata lists no broker"))
        return node_id

    async def controller(self) -> int:
        """The controller's node id; any broker when the metadata names none (since
        KIP-590 every broker forwards controller requests)."""
        metadata = self.cluster.metadata
        controller = metadata.controller_id
        if controller is None or controller < 0 or metadata.broker(controller) is None:
            return await self.any_node()
        return controller

    async def run(self, what: str, attempt: Callable[[], Awaitable[KafkaError | None]],
                  *, complete: Callable[[], bool] = lambda: False) -> None:
        """Attempt until done.  When time runs out, return quietly if ``complete()``
        (every entry has an answer, even a retriable one), else raise a timeout."""
        retrier = self.retrier
        last = await retrier.run(what, attempt)
        if last is not None and not complete():
            raise retrier.timed_out(what, last)

    async def metadata(self, topics: Sequence[str] | None) -> MetadataResponse:
        """A Metadata response for ``topics`` (``None``: all) from any broker, kept out
        of the client's own metadata (which tracks only what calls routed by leader)."""
        found: list[MetadataResponse] = []

        async def attempt() -> None:
            node = await self.any_node()
            found.append(await self.send(
                node, MetadataRequest, lambda v: requests.metadata_request(topics, v)))

        await self.run("Metadata", attempt)
        return found[-1]
