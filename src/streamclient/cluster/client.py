"""``ClusterClient``: connections to the cluster, its metadata, and where requests go.

No background task.  Metadata is refreshed by the tasks that need it: a caller that finds
no leader refreshes, and the producer's sender and the consumer's fetcher call
:meth:`ClusterClient.maybe_refresh_metadata` from their own loops, which refreshes when
:meth:`ClusterMetadata.time_to_next_update` says one is due (requested, topics still
missing, or ``metadata_max_age_ms`` passed).  Only one refresh is on the wire at a time;
callers arriving meanwhile wait for it and share its result.  So there is no background
error to store: every error is raised in the task that asked, and ``close()`` may be
called from any task.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Final

import anyio

from streamclient.errors import (
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaProtocolError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    NodeNotReadyError,
    RequestTimedOutError,
    UnknownTopicOrPartitionError,
    for_code,
)
from streamclient.net.backoff import ExponentialBackoff
from streamclient.net.connection import BrokerConnection
from streamclient.protocol.message import Message
from streamclient.protocol.messages.find_coordinator import FindCoordinatorRequest
from streamclient.protocol.messages.metadata import MetadataRequest
from streamclient.structs import TopicPartition

from .config import ClusterConfig
from .coordinator import (
    RETRIABLE_ERRORS,
    CoordinatorAnswer,
    CoordinatorType,
    coordinator_answers,
    find_coordinator_requests,
)
from .metadata import ClusterMetadata, Node
from .pool import ConnectionGroup, ConnectionPool

__all__ = ["ClusterClient"]

log = logging.getLogger(__name__)

# errors after which the connection is gone but another broker may well answer
_NODE_ERRORS: Final = (KafkaConnectionError, KafkaProtocolError, RequestTimedOutError,
                       NodeNotReadyError)
_TOPIC_AUTHORIZATION_FAILED: Final = 29
_INVALID_TOPIC: Final = 17


class _Refresh:
    """One metadata refresh on the wire, which later callers may wait for."""

    __slots__ = ("aborted", "done", "error", "topics")

    def __init__(self, topics: frozenset[str] | None) -> None:
        self.topics = topics  # None: all topics
        self.done = anyio.Event()
        self.error: Exception | None = None
        self.aborted = False  # the refreshing task was cancelled: nobody got an answer

    def covers(self, wanted: frozenset[str] | None) -> bool:
        if self.topics is None:
            return True
        return wanted is not None and wanted <= self.topics


class ClusterClient:
    """Connections to a Kafka cluster, its metadata, and request routing.

    ``ClusterClient(ClusterConfig(...))`` or ``ClusterClient(bootstrap_servers=..., ...)``;
    ``await start()`` bootstraps (the first metadata), ``await close()`` closes every
    connection; ``async with`` does both.
    """

    def __init__(self, config: ClusterConfig | None = None, /, *,
                 random_source: Callable[[], float] | None = None, **settings: Any) -> None:
        if config is None:
            config = ClusterConfig(**settings)
        elif settings:
            config = dataclasses.replace(config, **settings)
        self.config = config
        self.metadata = ClusterMetadata(
            metadata_max_age_ms=config.metadata_max_age_ms,
            retry_backoff_ms=config.retry_backoff_ms,
            retry_backoff_max_ms=config.retry_backoff_max_ms,
            random_source=random_source,
        )
        self._retry_backoff = ExponentialBackoff(
            config.retry_backoff_ms, config.retry_backoff_max_ms, random_source=random_source)
        self._pool = ConnectionPool(config, self._address_of, random_source=random_source)
        # nodes learned from FindCoordinator answers (normally also in the metadata)
        self._coordinator_nodes: dict[int, Node] = {}
        self._coordinators: dict[tuple[CoordinatorType, str], int] = {}
        self._coordinator_lock: anyio.Lock | None = None
        self._refresh: _Refresh | None = None
        self._state = "new"
        self._rotation = 0  # spreads least-loaded picks over equally loaded nodes

    @property
    def cluster(self) -> ClusterMetadata:
        """aiokafka's name for :attr:`metadata`."""
        return self.metadata

    @staticmethod
    def now_ms() -> int:
        """The clock the metadata timing runs on (the event loop's, in milliseconds)."""
        return int(anyio.current_time() * 1000)

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Bootstrap: fetch metadata from the first bootstrap server that answers.

        Raises ``KafkaConnectionError`` if none does (the client can be started again).
        """
        if self._state != "new":
            raise IllegalStateError(f"ClusterClient.start() called on a {self._state} client")
        self._state = "starting"
        self._coordinator_lock = anyio.Lock()
        try:
            await self._bootstrap()
        except BaseException:
            self._state = "new"
            raise
        self._state = "started"

    async def close(self) -> None:
        """Close every connection; requests in flight fail.  Idempotent, any task."""
        self._state = "closed"
        await self._pool.close()

    async def __aenter__(self) -> ClusterClient:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    def _check_started(self) -> None:
        if self._state == "started":
            return
        if self._state == "closed":
            raise IllegalStateError("the ClusterClient is closed")
        raise IllegalStateError("the ClusterClient is not started: call start() first")

    # --- sending ----------------------------------------------------------------------

    async def send(self, node_id: int, request: Message, version: int | None = None, *,
                   group: ConnectionGroup = ConnectionGroup.DEFAULT) -> Any:
        """Send ``request`` to broker ``node_id`` and return the decoded response.

        Connects first if needed (waiting out the reconnect backoff after a failed
        connect).  A connection that fails raises ``KafkaConnectionError`` (or
        ``RequestTimedOutError``) here and is replaced by the next send.  Coordinator
        traffic goes on ``group=ConnectionGroup.COORDINATION``.
        """
        self._check_started()
        try:
            conn = await self._pool.get(node_id, group)
        except KafkaConnectionError:
            self.metadata.request_update()  # the broker may have moved or gone
            raise
        return await self._send_on(conn, request, version)

    async def _send_on(self, conn: BrokerConnection, request: Message,
                       version: int | None) -> Any:
        try:
            return await conn.send(request, version)
        except KafkaError:
            if conn.closed:
                # as in the Java client, a lost connection is a hint that leadership moved
                self.metadata.request_update()
            raise

    async def send_to_any(self, request: Message, version: int | None = None) -> Any:
        """Send to the least loaded reachable broker.

        Brokers that cannot be connected to are skipped (nothing was sent to them); once
        the request is written, its outcome is this call's.
        """
        self._check_started()
        errors: list[str] = []
        for node_id in self._ranked_nodes():
            try:
                conn = await self._pool.get(node_id)
            except _NODE_ERRORS as exc:
                errors.append(f"node {node_id}: {exc}")
                continue
            return await self._send_on(conn, request, version)
        self.metadata.request_update()
        raise KafkaConnectionError("no broker is reachable" +
                                   (f": {'; '.join(errors)}" if errors else ""))

    async def send_to_leader(self, tp: TopicPartition, request: Message,
                             version: int | None = None) -> Any:
        """Send to the leader of ``tp``, refreshing metadata once if it is not known."""
        return await self.send(await self.leader(tp), request, version)

    async def leader(self, tp: TopicPartition) -> int:
        """The node id of ``tp``'s leader, refreshing metadata once if it is not known.

        Raises ``UnknownTopicOrPartitionError`` (or the topic's own error) or
        ``LeaderNotAvailableError``.
        """
        self._check_started()
        leader = self.metadata.leader_for(tp)
        if leader is None or leader < 0:
            await self.refresh_metadata([tp.topic])
            leader = self.metadata.leader_for(tp)
        if leader is None:
            code = self.metadata.topic_error(tp.topic)
            error = UnknownTopicOrPartitionError if code is None else for_code(code)
            raise error(f"{tp} is not in the cluster metadata")
        if leader < 0:
            raise LeaderNotAvailableError(f"{tp} has no leader")
        return leader

    def least_loaded_node(self) -> int | None:
        """A broker to send a request to that any broker can answer: a connected one with
        the fewest requests in flight, else one we may connect to now."""
        ranked = self._ranked_nodes()
        return ranked[0] if ranked else None

    def _ranked_nodes(self) -> list[int]:
        """Known brokers, best first; those still in reconnect backoff only if all are."""
        nodes = [n.node_id for n in self.metadata.brokers()]
        if not nodes:
            return []
        start = self._rotation % len(nodes)
        self._rotation += 1
        nodes = nodes[start:] + nodes[:start]

        def load(node_id: int) -> tuple[int, float]:
            conn = self._pool.connection(node_id)
            if conn is not None:
                return (0, conn.in_flight)
            backoff = self._pool.backoff_remaining_ms(node_id)
            return (1, 0) if backoff == 0 else (2, backoff)

        ranked = sorted(nodes, key=load)  # stable: the rotation breaks ties
        usable = [n for n in ranked if load(n)[0] < 2]
        return usable or ranked

    def connection(self, node_id: int, group: ConnectionGroup = ConnectionGroup.DEFAULT
                   ) -> BrokerConnection | None:
        """The open connection to ``node_id``, if there is one (no I/O)."""
        return self._pool.connection(node_id, group)

    def is_ready(self, node_id: int,
                 group: ConnectionGroup = ConnectionGroup.DEFAULT) -> bool:
        """True if a connection to ``node_id`` is open now (no I/O)."""
        return self._pool.is_ready(node_id, group)

    def in_flight(self, node_id: int) -> int:
        """Requests written to ``node_id`` (default group) still waiting for a response."""
        return self._pool.in_flight(node_id)

    async def api_versions(self, node_id: int) -> dict[int, tuple[int, int]]:
        """API key → (min, max) as broker ``node_id`` advertised them (connects if needed)."""
        self._check_started()
        return (await self._pool.get(node_id)).broker_api_versions

    async def version_for(self, node_id: int, request_type: type[Message] | int) -> int:
        """The version a request of this type (or API key) is sent at to ``node_id``.

        Raises ``UnsupportedVersionError`` if the broker and we share none.
        """
        self._check_started()
        return (await self._pool.get(node_id)).version_for(request_type)

    def _address_of(self, node_id: int) -> tuple[str, int] | None:
        node = self.metadata.broker(node_id) or self._coordinator_nodes.get(node_id)
        return None if node is None else (node.host, node.port)

    # --- metadata ---------------------------------------------------------------------

    async def refresh_metadata(self, topics: Iterable[str] | None = None) -> ClusterMetadata:
        """Fetch metadata for the topics of interest (``topics`` are added to them).

        If a refresh that asks for those topics is already on the wire, waits for it
        instead of sending another.  Raises ``KafkaConnectionError`` if no broker (nor
        bootstrap server) answered.
        """
        self._check_started()
        if topics is not None:
            if isinstance(topics, str):
                raise TypeError("topics must be a collection of names, not one str")
            self.metadata.add_topics(topics)
        wanted = self.metadata.request_topics()
        wanted_set = None if wanted is None else frozenset(wanted)
        while (current := self._refresh) is not None:
            await current.done.wait()
            if not current.aborted and current.covers(wanted_set):
                if current.error is not None:
                    raise current.error
                return self.metadata
            # that refresh was cancelled or asked for less: run (or join) the next one
        mine = _Refresh(None)
        self._refresh = mine
        try:
            await self._refresh_once(mine)
        except Exception as exc:
            mine.error = exc
            raise
        except BaseException:
            mine.aborted = True
            raise
        finally:
            self._refresh = None
            mine.done.set()
        return self.metadata

    async def maybe_refresh_metadata(self) -> bool:
        """Refresh if one is due now; True if a refresh ran.  For callers' loops."""
        self._check_started()
        if self.metadata.time_to_next_update(self.now_ms()) > 0:
            return False
        await self.refresh_metadata()
        return True

    async def _refresh_once(self, refresh: _Refresh) -> None:
        # topics added while this task waited for an earlier refresh are included
        wanted = self.metadata.request_topics()
        refresh.topics = None if wanted is None else frozenset(wanted)
        errors: list[str] = []
        for node_id in self._ranked_nodes():
            try:
                conn = await self._pool.get(node_id)
                response = await self._send_on(conn, *self._metadata_request(conn, wanted))
            except _NODE_ERRORS as exc:
                errors.append(f"node {node_id}: {exc}")
                continue
            if self.metadata.update(response, self.now_ms(), requested_topics=wanted):
                return
            errors.append(f"node {node_id}: its metadata lists no brokers")
        # Every known broker failed: start again from the bootstrap servers, as KIP-899's
        # metadata.recovery.strategy=rebootstrap does (the cluster may have moved).
        if errors:
            log.warning("no known broker answered a metadata request (%s); trying the "
                        "bootstrap servers", "; ".join(errors))
        await self._bootstrap()

    def _metadata_request(self, conn: BrokerConnection,
                          wanted: list[str] | None) -> tuple[MetadataRequest, int]:
        version = conn.version_for(MetadataRequest)
        topics: list[MetadataRequest.MetadataRequestTopic] | None
        if wanted is None:
            # v0 has no null list: there, an empty list means all topics
            topics = [] if version == 0 else None
        else:
            topics = [MetadataRequest.MetadataRequestTopic(name=t) for t in wanted]
        # before v4 the broker's own setting decides, and the field cannot be sent
        allow = self.config.allow_auto_topic_creation or version < 4
        return MetadataRequest(topics=topics, allow_auto_topic_creation=allow), version

    async def _bootstrap(self) -> None:
        errors: list[str] = []
        addresses = self.config.bootstrap_addresses
        for host, port in addresses:
            # a new connection resolves the name again, so a moved broker is found
            conn = BrokerConnection(
                host, port, ssl_context=self.config.tls_context,
                client_id=self.config.client_id,
                request_timeout_ms=self.config.request_timeout_ms,
                connect_timeout_ms=self.config.connect_timeout_ms, sasl=self.config.sasl,
            )
            wanted = self.metadata.request_topics()
            try:
                await conn.connect()
                response = await conn.send(*self._metadata_request(conn, wanted))
            except _NODE_ERRORS as exc:
                await conn.close()
                errors.append(f"{host}:{port}: {exc}")
                continue
            except BaseException:
                await conn.close()
                raise
            if not self.metadata.update(response, self.now_ms(), requested_topics=wanted):
                await conn.close()
                errors.append(f"{host}:{port}: its metadata lists no brokers")
                continue
            await self._adopt(conn)
            return
        self.metadata.failed_update(self.now_ms())
        hosts = ",".join(f"{h}:{p}" for h, p in addresses)
        raise KafkaConnectionError(f"Unable to bootstrap from {hosts}: {'; '.join(errors)}")

    async def _adopt(self, conn: BrokerConnection) -> None:
        """Keep the bootstrap connection if it reaches a broker we now know by id."""
        for node in self.metadata.brokers():
            if (node.host, node.port) == (conn.host, conn.port) and \
                    self._pool.adopt(node.node_id, conn):
                return
        # the broker advertises itself under another address (or its node already has a
        # connection): this one cannot be used by node id
        await conn.close()

    async def wait_for_topic(self, topic: str, timeout_ms: int | None = None) -> set[int]:
        """Wait until ``topic`` has partitions in the metadata; returns their ids.

        The topic becomes a topic of interest; with ``allow_auto_topic_creation`` (and
        the broker allowing it) the metadata requests create it.  Raises
        ``TopicAuthorizationFailedError``/``InvalidTopicError`` at once, and
        ``KafkaTimeoutError`` after ``timeout_ms`` (default: ``request_timeout_ms``).
        """
        self._check_started()
        self.metadata.add_topics([topic])
        limit_ms = self.config.request_timeout_ms if timeout_ms is None else timeout_ms
        with anyio.move_on_after(limit_ms / 1000):
            while True:
                partitions = self.metadata.partitions_for_topic(topic)
                if partitions:
                    return partitions
                code = self.metadata.topic_error(topic)
                if code in (_TOPIC_AUTHORIZATION_FAILED, _INVALID_TOPIC):
                    raise for_code(code)(f"cannot use topic {topic!r}")
                delay = self.metadata.time_to_next_update(self.now_ms())
                if delay:
                    await anyio.sleep(delay / 1000)
                try:
                    await self.refresh_metadata()
                except KafkaConnectionError as exc:
                    log.debug("waiting for topic %r: %s", topic, exc)
        raise KafkaTimeoutError(f"topic {topic!r} not in the metadata after {limit_ms} ms")

    # --- coordinators -----------------------------------------------------------------

    async def coordinator(self, key: str, key_type: int = CoordinatorType.GROUP, *,
                          timeout_ms: int | None = None) -> int:
        """The node id of the coordinator for ``key`` (a group or transactional id)."""
        return (await self.coordinators([key], key_type, timeout_ms=timeout_ms))[key]

    async def coordinators(self, keys: Iterable[str], key_type: int = CoordinatorType.GROUP,
                           *, timeout_ms: int | None = None) -> dict[str, int]:
        """Coordinator node ids for ``keys``, from the cache or FindCoordinator.

        One request for all keys when the broker supports v4+ (KIP-699), else one per
        key.  COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR and COORDINATOR_LOAD_IN_PROGRESS
        are retried with the retry backoff until ``timeout_ms`` (default
        ``request_timeout_ms``), then raised; other errors are raised at once.
        """
        self._check_started()
        kind = CoordinatorType(key_type)
        if isinstance(keys, str):
            raise TypeError("keys must be a collection of str, not one str")
        wanted = list(dict.fromkeys(keys))
        if not all(isinstance(k, str) for k in wanted):
            raise TypeError("keys must be a collection of str")
        found = self._cached_coordinators(kind, wanted)
        if len(found) == len(wanted):
            return found
        limit_ms = self.config.request_timeout_ms if timeout_ms is None else timeout_ms
        last_error: KafkaError | None = None
        assert self._coordinator_lock is not None
        with anyio.move_on_after(limit_ms / 1000):
            async with self._coordinator_lock:
                attempt = 0
                while True:
                    # another task may have looked some up while this one waited
                    found = self._cached_coordinators(kind, wanted)
                    missing = [k for k in wanted if k not in found]
                    if not missing:
                        return found
                    try:
                        answers = await self._find_coordinators(missing, kind)
                    except _NODE_ERRORS as exc:
                        last_error, answers = exc, []
                    for answer in answers:
                        error = self._take_coordinator_answer(kind, answer)
                        if error is not None:
                            last_error = error
                    if all((kind, k) in self._coordinators for k in missing):
                        continue  # the loop's top returns them
                    await anyio.sleep(self._retry_backoff.delay_ms(attempt) / 1000)
                    attempt += 1
        if last_error is not None:
            raise last_error
        raise KafkaTimeoutError(f"no {kind.name.lower()} coordinator found for "
                                f"{wanted} within {limit_ms} ms")

    def invalidate_coordinator(self, key: str,
                               key_type: int = CoordinatorType.GROUP) -> None:
        """Forget the cached coordinator for ``key``: call it after NOT_COORDINATOR,
        COORDINATOR_NOT_AVAILABLE (``coordinator.RELOOKUP_ERRORS``) or a connection
        failure on the coordinator's connection."""
        self._coordinators.pop((CoordinatorType(key_type), key), None)

    def _cached_coordinators(self, kind: CoordinatorType, keys: list[str]) -> dict[str, int]:
        cache = self._coordinators
        return {k: cache[(kind, k)] for k in keys if (kind, k) in cache}

    def _take_coordinator_answer(self, kind: CoordinatorType,
                                 answer: CoordinatorAnswer) -> KafkaError | None:
        """Cache a good answer; return a retriable error; raise any other."""
        if answer.error_code == 0:
            self._coordinator_nodes[answer.node_id] = Node(answer.node_id, answer.host,
                                                           answer.port)
            self._coordinators[(kind, answer.key)] = answer.node_id
            return None
        error = for_code(answer.error_code)(
            f"FindCoordinator for {kind.name.lower()} {answer.key!r}"
            + (f": {answer.error_message}" if answer.error_message else ""))
        if answer.error_code in RETRIABLE_ERRORS:
            return error
        raise error

    async def _find_coordinators(self, keys: list[str],
                                 kind: CoordinatorType) -> list[CoordinatorAnswer]:
        node_id = self.least_loaded_node()
        if node_id is None:
            raise KafkaConnectionError("no broker is known")
        conn = await self._pool.get(node_id)
        version = conn.version_for(FindCoordinatorRequest)
        answers: list[CoordinatorAnswer] = []
        for request in find_coordinator_requests(keys, kind, version):
            response = await self._send_on(conn, request, version)
            answers.extend(coordinator_answers(request, response, version))
        return answers

    def __repr__(self) -> str:
        return f"<ClusterClient {self._state} {self.metadata!r}>"
