"""``ClusterMetadata``: the client's sans-IO view of the cluster, and when to refresh it.

The snapshot is replaced, never edited, by :meth:`ClusterMetadata.update` from a
``MetadataResponse``; readers get immutable values (``Node``, ``PartitionInfo``,
``TopicInfo``) that stay consistent however the snapshot moves on.  No clock and no I/O:
every decision takes ``now_ms`` from the caller (the async shell in ``client.py`` passes
its loop's monotonic clock).

The rules are the Java client's (``org.apache.kafka.clients.Metadata``):

- A partition whose leader epoch in the response is *older* than the one we last saw
  keeps its cached state (KIP-320): a broker that has not yet heard of a leader change
  must not move us back to the old leader.
- A topic (or partition) error that means "metadata is not there yet"
  (``invalid_metadata`` errors: UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, …)
  leaves the topic in the *needs refresh* set, so the next refresh comes after the retry
  backoff instead of after ``metadata_max_age_ms``.
- TOPIC_AUTHORIZATION_FAILED and INVALID_TOPIC_EXCEPTION are remembered per topic so
  callers waiting for a topic can fail at once.
- Topics of interest are what a refresh asks for: the producer adds the topics it sends
  to, the consumer sets its subscription; a pattern subscription asks for all topics.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

from streamclient.errors import for_code
from streamclient.net.backoff import ExponentialBackoff
from streamclient.structs import TopicPartition

__all__ = [
    "ClusterMetadata",
    "MetadataListener",
    "Node",
    "PartitionInfo",
    "TopicInfo",
]

log = logging.getLogger(__name__)

NO_LEADER: Final = -1
NO_EPOCH: Final = -1
_TOPIC_AUTHORIZATION_FAILED: Final = 29
_INVALID_TOPIC: Final = 17


@dataclass(frozen=True, slots=True)
class Node:
    """One broker: where to connect to it, and its rack."""

    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One partition as the last accepted metadata described it."""

    topic: str
    partition: int
    leader: int  # NO_LEADER (-1) while the partition has none
    leader_epoch: int  # NO_EPOCH (-1) when the broker does not report epochs (Metadata < v7)
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline_replicas: tuple[int, ...] = ()
    error_code: int = 0

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A topic with no error, and its partitions by id."""

    name: str
    topic_id: uuid.UUID
    is_internal: bool
    partitions: Mapping[int, PartitionInfo]


class _NodeLike(Protocol):
    """Anything with a node's fields: a ``Node``, or a Produce/Fetch ``NodeEndpoint``."""

    @property
    def node_id(self) -> int: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def rack(self) -> str | None: ...


MetadataListener = Callable[["ClusterMetadata"], None]


class ClusterMetadata:
    """The latest accepted cluster metadata, the topics we care about, and refresh timing.

    ``retry_backoff_ms``/``retry_backoff_max_ms`` space out refreshes after a failed one or
    while topics still need refreshing (exponential, KIP-580); ``metadata_max_age_ms``
    forces a refresh of a snapshot that old even when nothing asked for one.
    """

    def __init__(
        self,
        *,
        metadata_max_age_ms: int = 300_000,
        retry_backoff_ms: int = 100,
        retry_backoff_max_ms: int = 1_000,
        random_source: Callable[[], float] | None = None,
    ) -> None:
        if metadata_max_age_ms < 0:
            raise ValueError("metadata_max_age_ms must not be negative")
        if retry_backoff_ms < 0 or retry_backoff_max_ms < 0:
            raise ValueError("retry backoff must not be negative")
        self.metadata_max_age_ms = metadata_max_age_ms
        self._backoff = ExponentialBackoff(retry_backoff_ms, retry_backoff_max_ms,
                                           random_source=random_source)

        # the snapshot
        self._brokers: dict[int, Node] = {}
        self._controller_id: int | None = None
        self._cluster_id: str | None = None
        self._topics: dict[str, TopicInfo] = {}
        self._topic_errors: dict[str, int] = {}
        self._by_broker: dict[int, frozenset[TopicPartition]] | None = None
        self._not_ready: frozenset[str] = frozenset()  # see _find_not_ready
        # KIP-320: the newest leader epoch seen per partition, from any source, and the
        # topic id those epochs belong to (kept while a topic is briefly in error)
        self._last_seen_epochs: dict[TopicPartition, int] = {}
        self._topic_ids: dict[str, uuid.UUID] = {}

        # what a refresh asks for
        self._interest: set[str] = set()
        self._need_all_topics = False

        # timing
        self._need_update = True  # nothing is known yet
        self._last_refresh_ms: int | None = None  # last attempt, successful or not
        self._last_success_ms: int | None = None
        self._backoff_attempts = 0
        self._version = 0  # bumped by every accepted update

        self._listeners: list[MetadataListener] = []

    # --- the snapshot ---------------------------------------------------------------

    @property
    def version(self) -> int:
        """Counts accepted updates; waiters compare it to see that a refresh landed."""
        return self._version

    @property
    def cluster_id(self) -> str | None:
        return self._cluster_id

    @property
    def controller_id(self) -> int | None:
        return self._controller_id

    def brokers(self) -> list[Node]:
        """Every broker in the last metadata, by node id."""
        return [self._brokers[k] for k in sorted(self._brokers)]

    def broker(self, node_id: int) -> Node | None:
        return self._brokers.get(node_id)

    def topics(self, *, exclude_internal: bool = False) -> set[str]:
        """Topics known without error."""
        return {name for name, info in self._topics.items()
                if not (exclude_internal and info.is_internal)}

    def topic(self, topic: str) -> TopicInfo | None:
        return self._topics.get(topic)

    def internal_topics(self) -> set[str]:
        return {name for name, info in self._topics.items() if info.is_internal}

    def topic_id(self, topic: str) -> uuid.UUID | None:
        info = self._topics.get(topic)
        return None if info is None else info.topic_id

    def topic_error(self, topic: str) -> int | None:
        """The error code the last metadata gave for ``topic``, or ``None`` if it had none."""
        return self._topic_errors.get(topic)

    @property
    def unauthorized_topics(self) -> set[str]:
        return {t for t, code in self._topic_errors.items()
                if code == _TOPIC_AUTHORIZATION_FAILED}

    @property
    def invalid_topics(self) -> set[str]:
        return {t for t, code in self._topic_errors.items() if code == _INVALID_TOPIC}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        """Partition ids of ``topic``, or ``None`` if the topic is not known."""
        info = self._topics.get(topic)
        return None if info is None else set(info.partitions)

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        """Partitions of ``topic`` that have a leader, or ``None`` if the topic is not known."""
        info = self._topics.get(topic)
        if info is None:
            return None
        return {p for p, part in info.partitions.items() if part.leader != NO_LEADER}

    def partition(self, tp: TopicPartition) -> PartitionInfo | None:
        info = self._topics.get(tp.topic)
        return None if info is None else info.partitions.get(tp.partition)

    def leader_for(self, tp: TopicPartition) -> int | None:
        """The leader's node id; -1 while the partition has none; ``None`` if unknown."""
        part = self.partition(tp)
        return None if part is None else part.leader

    def leader_epoch_for(self, tp: TopicPartition) -> int | None:
        part = self.partition(tp)
        return None if part is None else part.leader_epoch

    def last_seen_leader_epoch(self, tp: TopicPartition) -> int | None:
        return self._last_seen_epochs.get(tp)

    def partitions_for_broker(self, node_id: int) -> set[TopicPartition] | None:
        """Partitions ``node_id`` leads, or ``None`` if it leads none."""
        if self._by_broker is None:
            grouped: dict[int, set[TopicPartition]] = {}
            for info in self._topics.values():
                for part in info.partitions.values():
                    if part.leader != NO_LEADER:
                        grouped.setdefault(part.leader, set()).add(part.tp)
            self._by_broker = {k: frozenset(v) for k, v in grouped.items()}
        found = self._by_broker.get(node_id)
        return None if found is None else set(found)

    # --- topics of interest ---------------------------------------------------------

    @property
    def topics_of_interest(self) -> frozenset[str]:
        return frozenset(self._interest)

    @property
    def need_all_topics(self) -> bool:
        return self._need_all_topics

    def set_need_all_topics(self, value: bool) -> None:
        """Ask for every topic on each refresh (a pattern subscription needs them)."""
        if value and not self._need_all_topics:
            self._need_update = True
        self._need_all_topics = value

    def add_topics(self, topics: Iterable[str]) -> bool:
        """Add topics of interest; a new one makes an update due.  True if any was new."""
        new = {t for t in topics if t not in self._interest}
        self._check_names(new)
        if not new:
            return False
        self._interest |= new
        if not new <= set(self._topics):
            self._need_update = True
        return True

    def set_topics(self, topics: Iterable[str]) -> bool:
        """Replace the topics of interest (a consumer's subscription).  True if it changed."""
        wanted = set(topics)
        self._check_names(wanted)
        if wanted == self._interest:
            return False
        added = wanted - self._interest
        self._interest = wanted
        if added - set(self._topics):
            self._need_update = True
        return True

    def remove_topics(self, topics: Iterable[str]) -> None:
        """Forget topics (a producer's idle topics); the next update drops their state."""
        self._interest -= set(topics)

    def request_topics(self) -> list[str] | None:
        """The topics the next MetadataRequest should name; ``None`` means all topics."""
        return None if self._need_all_topics else sorted(self._interest)

    @staticmethod
    def _check_names(topics: Iterable[str]) -> None:
        for topic in topics:
            if not isinstance(topic, str) or not topic:
                raise ValueError(f"a topic name must be a non-empty str, not {topic!r}")

    # --- timing ---------------------------------------------------------------------

    def request_update(self) -> int:
        """Make an update due (subject to the retry backoff); returns :attr:`version`."""
        self._need_update = True
        return self._version

    @property
    def update_requested(self) -> bool:
        return self._need_update or bool(self._needs_refresh())

    def _needs_refresh(self) -> frozenset[str]:
        """Topics of interest whose last metadata said "not there yet"."""
        if self._need_all_topics:
            return self._not_ready
        return self._not_ready & self._interest

    def _find_not_ready(self) -> None:
        # computed once per snapshot: time_to_next_update runs on every loop iteration
        pending = {t for t, code in self._topic_errors.items()
                   if for_code(code).invalid_metadata}
        pending |= {
            name for name, info in self._topics.items()
            if any(p.error_code and for_code(p.error_code).invalid_metadata
                   for p in info.partitions.values())
        }
        self._not_ready = frozenset(pending)

    def time_to_next_update(self, now_ms: int) -> int:
        """Milliseconds until a refresh is due: 0 means refresh now.

        Due when requested (or topics need refreshing) or when the snapshot is older than
        ``metadata_max_age_ms``; in both cases not before the backoff since the last
        attempt has passed.
        """
        if self.update_requested or self._last_success_ms is None:
            to_expire = 0
        else:
            to_expire = max(self._last_success_ms + self.metadata_max_age_ms - now_ms, 0)
        return max(to_expire, self._time_to_allow_update(now_ms))

    def _time_to_allow_update(self, now_ms: int) -> int:
        if self._last_refresh_ms is None or self._backoff_attempts == 0:
            return 0
        delay = self._backoff.delay_ms(self._backoff_attempts - 1)
        return max(int(self._last_refresh_ms + delay - now_ms), 0)

    def failed_update(self, now_ms: int) -> None:
        """A refresh attempt failed (no broker answered): back off before the next one."""
        self._last_refresh_ms = now_ms
        self._backoff_attempts += 1

    # --- updates --------------------------------------------------------------------

    def update(self, response: Any, now_ms: int, *,
               requested_topics: Iterable[str] | None = None) -> bool:
        """Take a ``MetadataResponse``.  ``requested_topics``: the topics the request named
        (``None``: it asked for all).  Returns False if the response was unusable (no
        brokers), which counts as a failed attempt."""
        if not response.brokers:
            log.warning("metadata response lists no brokers; ignoring it")
            self.failed_update(now_ms)
            return False
        requested = None if requested_topics is None else set(requested_topics)

        brokers = {b.node_id: Node(b.node_id, b.host, b.port, b.rack) for b in response.brokers}
        controller = response.controller_id
        topics: dict[str, TopicInfo] = {}
        errors: dict[str, int] = {}
        for topic in response.topics:
            name = topic.name
            if name is None:
                continue  # v12+ may answer by id only; we always ask by name
            if topic.error_code:
                errors[name] = topic.error_code
                continue
            topics[name] = self._merge_topic(topic)

        # A partial request leaves other topics as they were, while someone still cares
        for name, info in self._topics.items():
            if name in topics or name in errors:
                continue
            if requested is not None and name not in requested and self._interested(name):
                topics[name] = info
        for name, code in self._topic_errors.items():
            if name in topics or name in errors:
                continue
            if requested is not None and name not in requested and self._interested(name):
                errors[name] = code

        changed = (brokers != self._brokers or topics != self._topics
                   or controller != self._controller_id
                   or response.cluster_id != self._cluster_id)
        self._brokers = brokers
        self._controller_id = None if controller is None or controller < 0 else controller
        self._cluster_id = response.cluster_id
        self._topics = topics
        self._topic_errors = errors
        self._by_broker = None
        self._find_not_ready()
        self._forget_epochs()

        self._version += 1
        self._last_refresh_ms = now_ms
        self._last_success_ms = now_ms
        self._need_update = False
        # Topics that are still not there keep the exponential backoff growing, so a
        # producer waiting for an auto-created topic does not poll every retry_backoff_ms.
        self._backoff_attempts = self._backoff_attempts + 1 if self._needs_refresh() else 0
        if changed:
            self._notify()
        return True

    def _interested(self, topic: str) -> bool:
        return self._need_all_topics or topic in self._interest

    def _merge_topic(self, topic: Any) -> TopicInfo:
        name: str = topic.name
        old = self._topics.get(name)
        topic_id = topic.topic_id
        if topic_id.int:
            known_id = self._topic_ids.get(name)
            if known_id is not None and known_id != topic_id:
                # the topic was deleted and created again: its old epochs mean nothing
                for tp in [tp for tp in self._last_seen_epochs if tp.topic == name]:
                    del self._last_seen_epochs[tp]
                old = None
            self._topic_ids[name] = topic_id
        partitions: dict[int, PartitionInfo] = {}
        for p in topic.partitions:
            new = PartitionInfo(
                topic=name,
                partition=p.partition_index,
                leader=p.leader_id,
                leader_epoch=p.leader_epoch,
                replicas=tuple(p.replica_nodes),
                isr=tuple(p.isr_nodes),
                offline_replicas=tuple(p.offline_replicas),
                error_code=p.error_code,
            )
            partitions[new.partition] = self._accept_partition(new, old)
        return TopicInfo(name=name, topic_id=topic_id, is_internal=topic.is_internal,
                         partitions=partitions)

    def _accept_partition(self, new: PartitionInfo, old_topic: TopicInfo | None) -> PartitionInfo:
        """KIP-320: keep the cached partition when the response's leader epoch is older."""
        tp = new.tp
        last_seen = self._last_seen_epochs.get(tp, NO_EPOCH)
        if new.leader_epoch == NO_EPOCH:
            return new  # a broker without epochs: nothing to compare
        if new.leader_epoch >= last_seen:
            self._last_seen_epochs[tp] = new.leader_epoch
            return new
        cached = None if old_topic is None else old_topic.partitions.get(tp.partition)
        log.debug("ignoring metadata for %s with leader epoch %d older than %d",
                  tp, new.leader_epoch, last_seen)
        if cached is not None:
            return cached
        # Only the epoch is known (from a fetch, say): the stale leader is still better
        # than none, and the epoch we keep says the partition is behind.
        return new

    def _forget_epochs(self) -> None:
        known = self._topics
        for tp in [tp for tp in self._last_seen_epochs
                   if tp.topic not in known and not self._interested(tp.topic)]:
            del self._last_seen_epochs[tp]
        for name in [n for n in self._topic_ids
                     if n not in known and not self._interested(n)]:
            del self._topic_ids[name]

    def update_last_seen_epoch_if_newer(self, tp: TopicPartition, leader_epoch: int) -> bool:
        """Record a leader epoch seen elsewhere (a fetched batch, an offset lookup).

        A newer epoch than the snapshot's means our metadata is behind: an update is
        requested.  Returns True if the epoch was newer.
        """
        if leader_epoch < 0:
            return False
        if leader_epoch <= self._last_seen_epochs.get(tp, NO_EPOCH):
            return False
        self._last_seen_epochs[tp] = leader_epoch
        current = self.leader_epoch_for(tp)
        if current is None or leader_epoch > current:
            self._need_update = True
        return True

    def update_partition_leaders(
        self,
        leaders: Mapping[TopicPartition, tuple[int, int]],
        nodes: Iterable[_NodeLike] = (),
    ) -> set[TopicPartition]:
        """KIP-951: apply the current-leader hints of NOT_LEADER_OR_FOLLOWER answers.

        ``leaders`` maps a partition to ``(leader_id, leader_epoch)`` from a Produce or
        Fetch response's ``current_leader``; ``nodes`` are the response's
        ``node_endpoints``.  A hint is applied only when its epoch is newer than the one
        we hold and its leader is a node we can reach (known, or among ``nodes``).
        Returns the partitions that changed.  As in the Java client, callers still
        request a full update: the hint only shortens the time spent on a dead leader.
        """
        endpoints = {n.node_id: Node(n.node_id, n.host, n.port, n.rack) for n in nodes}
        applied: set[TopicPartition] = set()
        topics = dict(self._topics)
        brokers = dict(self._brokers)
        for tp, (leader_id, leader_epoch) in leaders.items():
            info = topics.get(tp.topic)
            part = None if info is None else info.partitions.get(tp.partition)
            if info is None or part is None or leader_id < 0 or leader_epoch < 0:
                continue
            if leader_epoch <= max(part.leader_epoch,
                                   self._last_seen_epochs.get(tp, NO_EPOCH)):
                continue
            if leader_id not in brokers:
                if leader_id not in endpoints:
                    continue
                brokers[leader_id] = endpoints[leader_id]
            elif leader_id in endpoints and endpoints[leader_id] != brokers[leader_id]:
                # the response's endpoint is newer than our snapshot's
                brokers[leader_id] = endpoints[leader_id]
            new_parts = dict(info.partitions)
            new_parts[tp.partition] = replace(part, leader=leader_id, leader_epoch=leader_epoch,
                                              error_code=0)
            topics[tp.topic] = replace(info, partitions=new_parts)
            self._last_seen_epochs[tp] = leader_epoch
            applied.add(tp)
        if applied:
            self._topics = topics
            self._brokers = brokers
            self._by_broker = None
            self._find_not_ready()
            self._notify()
        return applied

    # --- listeners ------------------------------------------------------------------

    def add_listener(self, listener: MetadataListener) -> None:
        """Call ``listener(self)`` after every update that changed the snapshot."""
        self._listeners.append(listener)

    def remove_listener(self, listener: MetadataListener) -> None:
        self._listeners.remove(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:
                # a listener belongs to one component; the refresh belongs to whoever
                # happened to drive it, who must not get another component's error
                log.exception("metadata listener %r failed", listener)

    def __repr__(self) -> str:
        return (f"<ClusterMetadata v{self._version} brokers={sorted(self._brokers)} "
                f"topics={len(self._topics)} errors={len(self._topic_errors)}>")
