"""``ClusterState``: the one picture of the cluster every node of an EmbeddedCluster shares.

Nodes, topics, partition leadership (replicas, ISR, leader epochs) and topic configs live
here, with the logs (``state.logs``), the coordinators (``state.groups``, ``state.txns``),
the clock and the fault injector hung off it.  It is plain synchronous Python: handlers
call it between awaits, so on one event loop no lock is needed.

Replication is modelled, not performed: all replicas share one log object, an alive ISR
member counts as caught up at once, and leadership follows node liveness.  Every change of
leader, epoch, ISR or liveness is pushed to the partition's log with
``PartitionLog.update_replication`` so the high watermark reflects it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from streamclient.broker.config import (
    BrokerConfig,
    effective_topic_configs,
    validate_topic_configs,
)
from streamclient.broker.sasl import CredentialStore
from streamclient.errors import BrokerResponseError, for_code

if TYPE_CHECKING:
    from streamclient.broker.faults import FaultInjector
    from streamclient.broker.log import LogManager, PartitionLog

__all__ = [
    "OFFSETS_TOPIC",
    "TRANSACTION_STATE_TOPIC",
    "Clock",
    "ClusterState",
    "ManualClock",
    "NodeState",
    "PartitionState",
    "SystemClock",
    "TopicState",
]

OFFSETS_TOPIC = "__consumer_offsets"
TRANSACTION_STATE_TOPIC = "__transaction_state"
INTERNAL_TOPICS = frozenset({OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC})

_LEGAL_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_NAME_LENGTH = 249
# Kafka has no hard limit; this one keeps a stray request (a fuzzer, a typo) from building
# millions of in-memory logs
MAX_PARTITIONS_PER_TOPIC = 10_000

TopicExistsError = for_code(36)  # TOPIC_ALREADY_EXISTS
InvalidTopicError = for_code(17)  # INVALID_TOPIC_EXCEPTION
InvalidPartitionsError = for_code(37)  # INVALID_PARTITIONS
InvalidReplicationFactorError = for_code(38)  # INVALID_REPLICATION_FACTOR
InvalidReplicaAssignmentError = for_code(39)  # INVALID_REPLICA_ASSIGNMENT
UnknownTopicError = for_code(3)  # UNKNOWN_TOPIC_OR_PARTITION
BrokerNotAvailableError = for_code(8)  # BROKER_NOT_AVAILABLE
InvalidRequestError = for_code(42)  # INVALID_REQUEST


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    """Wall-clock milliseconds (record timestamps and retention are wall-clock in Kafka)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> None:
        self._now += ms


@dataclass
class NodeState:
    node_id: int
    host: str
    port: int
    alive: bool = True
    rack: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class PartitionState:
    topic: str
    index: int
    replicas: list[int]
    isr: list[int]
    leader: int  # -1 while no ISR member is alive (offline)
    leader_epoch: int = 0
    # bumped on every leader or ISR change (KIP-380's partition epoch)
    partition_epoch: int = 0

    def offline_replicas(self, alive: Iterable[int]) -> list[int]:
        up = set(alive)
        return [r for r in self.replicas if r not in up]


@dataclass
class TopicState:
    name: str
    topic_id: uuid.UUID
    partitions: list[PartitionState]
    # only the configs set explicitly; see ``effective_configs``
    configs: dict[str, str] = field(default_factory=dict)
    internal: bool = False
    # the broker's topic defaults (BrokerConfig.topic_defaults) under the explicit configs
    base_configs: Mapping[str, str] = field(default_factory=dict)

    @property
    def replication_factor(self) -> int:
        return len(self.partitions[0].replicas) if self.partitions else 0

    def effective_configs(self) -> dict[str, str | None]:
        return effective_topic_configs({**self.base_configs, **self.configs})


def validate_topic_name(name: str) -> None:
    """Kafka's rules for a topic name (InvalidTopicError otherwise)."""
    if not name:
        raise InvalidTopicError("topic name is empty")
    if name in (".", ".."):
        raise InvalidTopicError(f"topic name cannot be {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidTopicError(f"topic name is longer than {MAX_NAME_LENGTH} characters")
    if not _LEGAL_NAME.match(name):
        raise InvalidTopicError(
            f"topic name {name!r} has characters other than ASCII letters, digits, '.', '_', '-'")


class ClusterState:
    """Nodes, topics and leadership; ``logs``, ``groups``, ``txns``, ``clock``, ``faults``.

    ``logs``, ``groups``, ``txns`` and ``faults`` are attached by whoever builds the
    cluster (:class:`~streamclient.broker.cluster.EmbeddedCluster` does) because they
    themselves take the state.
    """

    logs: LogManager
    groups: Any  # streamclient.broker.groups.GroupCoordinator
    txns: Any  # streamclient.broker.txn.TransactionCoordinator
    faults: FaultInjector

    def __init__(self, config: BrokerConfig | None = None, *, clock: Clock | None = None,
                 cluster_id: str | None = None) -> None:
        self.config = config or BrokerConfig()
        self.clock: Clock = clock or SystemClock()
        # SASL users (PLAIN passwords, SCRAM credentials), changed at runtime by
        # AlterUserScramCredentials
        self.credentials = CredentialStore.from_passwords(
            self.config.sasl_users, iterations=self.config.scram_iterations)
        # Kafka's cluster ids are 22-character url-safe base64 uuids
        self.cluster_id = cluster_id or _base64_uuid(uuid.uuid4())
        self.nodes: dict[int, NodeState] = {}
        self.topics: dict[str, TopicState] = {}
        self._by_id: dict[uuid.UUID, TopicState] = {}
        # rotates the first leader of each new topic so single-partition topics spread
        self._next_leader_start = 0

    # -- nodes ---------------------------------------------------------------------------

    def add_node(self, node_id: int, host: str, port: int, *, rack: str | None = None) -> None:
        self.nodes[node_id] = NodeState(node_id, host, port, True, rack)

    def alive_node_ids(self) -> list[int]:
        return sorted(n.node_id for n in self.nodes.values() if n.alive)

    def alive_nodes(self) -> list[NodeState]:
        return [self.nodes[i] for i in self.alive_node_ids()]

    def is_alive(self, node_id: int) -> bool:
        node = self.nodes.get(node_id)
        return node is not None and node.alive

    @property
    def controller_id(self) -> int:
        """The lowest alive node id (-1 when every node is down)."""
        alive = self.alive_node_ids()
        return alive[0] if alive else -1

    def set_node_alive(self, node_id: int, alive: bool) -> None:
        """Mark a node up or down and move leadership and ISR membership accordingly.

        Down: it leaves every ISR it is in unless it is the last member (Kafka keeps the
        last one so an unclean election is visible); partitions it led get the next alive
        ISR replica as leader, or go offline (leader -1), with the leader epoch bumped.
        Up: it rejoins the ISR of its partitions (the in-process copy is always caught
        up) and takes over offline partitions it replicates.
        """
        node = self.nodes.get(node_id)
        if node is None:
            raise BrokerNotAvailableError(f"no node {node_id}")
        if node.alive == alive:
            return
        node.alive = alive
        for topic in self.topics.values():
            for part in topic.partitions:
                if node_id not in part.replicas:
                    continue
                if alive:
                    self._node_up(part, node_id)
                else:
                    self._node_down(part, node_id)
                self._push_replication(part)

    def _node_down(self, part: PartitionState, node_id: int) -> None:
        if node_id in part.isr and len(part.isr) > 1:
            part.isr.remove(node_id)
            part.partition_epoch += 1
        if part.leader == node_id:
            successor = next((r for r in part.isr if r != node_id and self.is_alive(r)), -1)
            part.leader = successor
            part.leader_epoch += 1
            part.partition_epoch += 1

    def _node_up(self, part: PartitionState, node_id: int) -> None:
        if node_id not in part.isr:
            # keep the ISR in replica order so metadata output is stable
            part.isr = [r for r in part.replicas if r in part.isr or r == node_id]
            part.partition_epoch += 1
        if part.leader == -1 or not self.is_alive(part.leader):
            part.leader = node_id
            part.leader_epoch += 1
            part.partition_epoch += 1

    def move_leader(self, topic: str, partition: int, to_node: int) -> PartitionState:
        """Make ``to_node`` lead the partition (it must be an alive replica; it joins the ISR)."""
        part = self.partition(topic, partition)
        if part is None:
            raise UnknownTopicError(f"{topic}-{partition} does not exist")
        if to_node not in part.replicas:
            raise InvalidReplicaAssignmentError(
                f"node {to_node} is not a replica of {topic}-{partition} ({part.replicas})")
        if not self.is_alive(to_node):
            raise BrokerNotAvailableError(f"node {to_node} is down")
        if part.leader != to_node:
            if to_node not in part.isr:
                part.isr = [r for r in part.replicas if r in part.isr or r == to_node]
            part.leader = to_node
            part.leader_epoch += 1
            part.partition_epoch += 1
            self._push_replication(part)
        return part

    # -- topics --------------------------------------------------------------------------

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicState | None:
        return self._by_id.get(topic_id)

    def partition(self, topic: str, partition: int) -> PartitionState | None:
        meta = self.topics.get(topic)
        if meta is None or not 0 <= partition < len(meta.partitions):
            return None
        return meta.partitions[partition]

    def partition_leader(self, topic: str, partition: int) -> int | None:
        """The leading node of the partition; None if it does not exist or is offline."""
        part = self.partition(topic, partition)
        if part is None or part.leader < 0:
            return None
        return part.leader

    def partition_log(self, topic: str, partition: int) -> PartitionLog | None:
        return self.logs.partition(topic, partition)

    def iter_partitions(self) -> Iterator[PartitionState]:
        for meta in self.topics.values():
            yield from meta.partitions

    def create_topic(
        self,
        name: str,
        num_partitions: int | None = None,
        replication_factor: int | None = None,
        configs: Mapping[str, str | None] | None = None,
        *,
        assignments: Mapping[int, Sequence[int]] | None = None,
        internal: bool = False,
        validate_only: bool = False,
    ) -> TopicState:
        """Create a topic (or only check that it could be created).

        ``num_partitions``/``replication_factor`` of None or -1 take the broker defaults
        (KIP-464).  ``assignments`` maps partition -> replica node ids and then fixes the
        count and factor itself.  Raises the BrokerResponseError subclass of the Kafka
        error code a CreateTopics response would carry.
        """
        if name in self.topics:
            raise TopicExistsError(f"topic {name!r} already exists")
        validate_topic_name(name)
        if not internal and name in INTERNAL_TOPICS:
            raise InvalidRequestError(f"{name!r} is an internal topic")
        if configs and any(v is None for v in configs.values()):
            raise for_code(40)("topic configs cannot have null values")  # INVALID_CONFIG
        overrides = {k: v for k, v in (configs or {}).items() if v is not None}
        validate_topic_configs({**self.config.topic_defaults, **overrides})
        replica_lists = self._plan_replicas(num_partitions, replication_factor, assignments,
                                            internal=internal, first_partition=0)
        topic_id = uuid.uuid4()
        # a zero uuid means "no id" on the wire, and ids starting with a zero-ish
        # base64 character confuse some tools; Kafka regenerates those too
        while topic_id.int == 0 or topic_id in self._by_id:
            topic_id = uuid.uuid4()
        meta = TopicState(name, topic_id, [], overrides, internal,
                          dict(self.config.topic_defaults))
        if validate_only:
            meta.partitions = [self._new_partition(name, i, r)
                               for i, r in enumerate(replica_lists)]
            return meta
        self.topics[name] = meta
        self._by_id[topic_id] = meta
        self._add_partitions(meta, replica_lists)
        return meta

    def restore_topic(self, name: str, topic_id: uuid.UUID,
                      replica_lists: Sequence[Sequence[int]], configs: Mapping[str, str], *,
                      internal: bool = False, leader_epochs: Sequence[int] = ()) -> TopicState:
        """Bring back a topic kept in a log dir (its id, replicas and configs), at start.

        A restart is a new leadership, as in Kafka: each leader epoch continues above the
        saved one and above every epoch the log itself has stamped.
        """
        meta = TopicState(name, topic_id, [], dict(configs), internal,
                          dict(self.config.topic_defaults))
        self.topics[name] = meta
        self._by_id[topic_id] = meta
        self._add_partitions(meta, [list(r) for r in replica_lists])
        for part in meta.partitions:
            log = self.logs.partition(name, part.index)
            saved = leader_epochs[part.index] if part.index < len(leader_epochs) else 0
            latest = log.epochs.latest_epoch if log is not None else -1
            part.leader_epoch = max(saved, latest) + 1
            part.partition_epoch += 1
            self._push_replication(part)
        return meta

    def maybe_auto_create_topic(self, name: str) -> TopicState | None:
        """The topic, created with the broker defaults if auto-creation allows it.

        Metadata (when the client allows it) and Produce call this.  Returns None when the
        topic does not exist and cannot be auto-created (disabled, invalid or internal
        name, not enough alive nodes).
        """
        meta = self.topics.get(name)
        if meta is not None:
            return meta
        if not self.config.auto_create_topics_enable or name in INTERNAL_TOPICS:
            return None
        try:
            return self.create_topic(name)
        except BrokerResponseError:
            return None

    ensure_topic = maybe_auto_create_topic

    def ensure_internal_topic(self, name: str) -> TopicState:
        """``__consumer_offsets`` / ``__transaction_state``, created on first use."""
        meta = self.topics.get(name)
        if meta is not None:
            return meta
        if name == OFFSETS_TOPIC:
            count = self.config.offsets_topic_num_partitions
            factor = self.config.offsets_topic_replication_factor
        elif name == TRANSACTION_STATE_TOPIC:
            count = self.config.transaction_state_log_num_partitions
            factor = self.config.transaction_state_log_replication_factor
        else:
            raise InvalidRequestError(f"{name!r} is not an internal topic")
        # like Kafka, the factor is capped by the brokers there are
        factor = max(1, min(factor, len(self.nodes)))
        return self.create_topic(name, count, factor, {"cleanup.policy": "compact"},
                                 internal=True)

    def delete_topic(self, name: str) -> TopicState:
        meta = self.topics.get(name)
        if meta is None:
            raise UnknownTopicError(f"topic {name!r} does not exist")
        if meta.internal:
            raise for_code(73)(f"{name!r} is an internal topic")  # TOPIC_DELETION_DISABLED
        if not self.config.delete_topic_enable:
            raise for_code(73)("topic deletion is disabled (delete.topic.enable=false)")
        del self.topics[name]
        del self._by_id[meta.topic_id]
        self.logs.delete_topic(name)
        return meta

    def create_partitions(
        self, name: str, total: int, assignments: Sequence[Sequence[int]] | None = None,
        *, validate_only: bool = False,
    ) -> TopicState:
        """Grow ``name`` to ``total`` partitions (CreatePartitions semantics)."""
        meta = self.topics.get(name)
        if meta is None:
            raise UnknownTopicError(f"topic {name!r} does not exist")
        current = len(meta.partitions)
        if total <= current:
            raise InvalidPartitionsError(
                f"topic {name!r} has {current} partitions; the new count must be larger, "
                f"got {total}")
        new = total - current
        if assignments is not None and len(assignments) != new:
            raise InvalidReplicaAssignmentError(
                f"{len(assignments)} assignments given for {new} new partitions")
        plan = (None if assignments is None
                else {current + i: a for i, a in enumerate(assignments)})
        replica_lists = self._plan_replicas(
            new, meta.replication_factor, plan, internal=meta.internal,
            first_partition=current, expected_factor=meta.replication_factor)
        if not validate_only:
            self._add_partitions(meta, replica_lists)
        return meta

    def alter_topic_configs(self, name: str, configs: Mapping[str, str],
                            *, validate_only: bool = False) -> None:
        """Replace the topic's explicit configs with ``configs`` (validated first)."""
        meta = self.topics.get(name)
        if meta is None:
            raise UnknownTopicError(f"topic {name!r} does not exist")
        validate_topic_configs({**meta.base_configs, **configs})
        if not validate_only:
            meta.configs = dict(configs)

    # -- internals -----------------------------------------------------------------------

    def _plan_replicas(
        self,
        count: int | None,
        factor: int | None,
        assignments: Mapping[int, Sequence[int]] | None,
        *,
        internal: bool,
        first_partition: int,
        expected_factor: int | None = None,
    ) -> list[list[int]]:
        if assignments:
            if count not in (None, -1) and assignments is not None and first_partition == 0:
                raise InvalidRequestError(
                    "give either a partition count or replica assignments, not both")
            return self._check_assignments(assignments, first_partition, expected_factor)
        count = self.config.num_partitions if count in (None, -1) else count
        factor = self.config.default_replication_factor if factor in (None, -1) else factor
        assert count is not None and factor is not None
        if count < 1:
            raise InvalidPartitionsError(f"number of partitions must be at least 1, got {count}")
        if first_partition + count > MAX_PARTITIONS_PER_TOPIC:
            raise InvalidPartitionsError(
                f"a topic may have at most {MAX_PARTITIONS_PER_TOPIC} partitions here")
        if factor < 1:
            raise InvalidReplicationFactorError(
                f"replication factor must be at least 1, got {factor}")
        alive = self.alive_node_ids()
        if factor > len(alive):
            raise InvalidReplicationFactorError(
                f"replication factor {factor} is larger than the {len(alive)} available "
                f"brokers")
        start = self._next_leader_start
        if first_partition == 0 and not internal:
            self._next_leader_start += 1
        n = len(alive)
        return [[alive[(start + p + i) % n] for i in range(factor)]
                for p in range(first_partition, first_partition + count)]

    def _check_assignments(self, assignments: Mapping[int, Sequence[int]], first: int,
                           expected_factor: int | None) -> list[list[int]]:
        indexes = sorted(assignments)
        if first + len(indexes) > MAX_PARTITIONS_PER_TOPIC:
            raise InvalidPartitionsError(
                f"a topic may have at most {MAX_PARTITIONS_PER_TOPIC} partitions here")
        if indexes != list(range(first, first + len(indexes))):
            raise InvalidReplicaAssignmentError(
                f"assignments must cover partitions {first}..{first + len(indexes) - 1} "
                f"consecutively, got {indexes}")
        result: list[list[int]] = []
        factor = expected_factor
        for index in indexes:
            replicas = list(assignments[index])
            if not replicas:
                raise InvalidReplicaAssignmentError(f"partition {index} has no replicas")
            if len(set(replicas)) != len(replicas):
                raise InvalidReplicaAssignmentError(
                    f"partition {index} lists a replica twice: {replicas}")
            unknown = [r for r in replicas if r not in self.nodes]
            if unknown:
                raise InvalidReplicaAssignmentError(
                    f"partition {index} names unknown brokers {unknown}")
            if factor is None:
                factor = len(replicas)
            elif len(replicas) != factor:
                raise InvalidReplicaAssignmentError(
                    f"partition {index} has {len(replicas)} replicas, expected {factor}")
            result.append(replicas)
        return result

    def _new_partition(self, topic: str, index: int, replicas: list[int]) -> PartitionState:
        isr = [r for r in replicas if self.is_alive(r)]
        leader = isr[0] if isr else -1
        # an assignment onto dead nodes still needs one ISR member to recover from
        return PartitionState(topic, index, list(replicas), isr or [replicas[0]], leader)

    def _add_partitions(self, meta: TopicState, replica_lists: list[list[int]]) -> None:
        now = self.clock.now_ms()
        first = len(meta.partitions)
        for offset, replicas in enumerate(replica_lists):
            part = self._new_partition(meta.name, first + offset, replicas)
            meta.partitions.append(part)
            self.logs.create_partition(meta.name, part.index, meta.effective_configs(),
                                       now_ms=now)
            self._push_replication(part)

    def _push_replication(self, part: PartitionState) -> None:
        log = self.logs.partition(part.topic, part.index)
        if log is not None:
            log.update_replication(leader=part.leader, leader_epoch=part.leader_epoch,
                                   isr=list(part.isr), alive=self.alive_node_ids())

    def refresh_log_configs(self, name: str) -> None:
        """Hand a topic's new configs to its logs (after AlterConfigs)."""
        meta = self.topics.get(name)
        if meta is None:
            return
        effective = meta.effective_configs()
        for part in meta.partitions:
            log = self.logs.partition(name, part.index)
            if log is not None:
                log.update_config(effective)


def _base64_uuid(value: uuid.UUID) -> str:
    import base64

    return base64.urlsafe_b64encode(value.bytes).decode("ascii").rstrip("=")
