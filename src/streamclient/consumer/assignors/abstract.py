"""The partition assignor interface shared by the built-in and user-written assignors.

Unlike aiokafka, where assignors are classes whose state lives in class attributes (so two
consumers in one process share it: aiokafka #1175), an assignor here is an *instance* owned
by one consumer.  The consumer instantiates a class passed in ``partition_assignment_strategy``
(see :func:`streamclient.consumer.assignors.compat.resolve_assignor`).

Everything here is sans-IO: the group leader hands :meth:`ConsumerPartitionAssignor.assign`
the partition counts it knows and the decoded subscriptions, and gets assignments back.
"""

from __future__ import annotations

import abc
import enum
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from streamclient.errors import KafkaConfigurationError, KafkaError
from streamclient.protocol.message import Buffer
from streamclient.structs import TopicPartition

#: A (topic, partition) pair.  :class:`streamclient.structs.TopicPartition` (and aiokafka's)
#: is a named tuple that compares and hashes equal to it, so either may be passed in; the
#: dataclasses below hold ``TopicPartition`` values.
TopicPartitionTuple = tuple[str, int]

#: What the leader knows of the cluster: per topic, a partition count or the partition ids.
ClusterPartitions = Mapping[str, int | Iterable[int]]

#: Kafka's "no generation" marker (``-1``), used where a generation is unknown.
NO_GENERATION = -1


class PartitionAssignorError(KafkaError):
    """An assignor was misconfigured, given input it cannot use, or broke its own rules."""


class RebalanceProtocol(enum.IntEnum):
    """How partitions change hands in a rebalance (Java's ``RebalanceProtocol``).

    EAGER revokes every partition before the group re-forms; COOPERATIVE (KIP-429) revokes
    only the partitions that move, over two rebalances.  Higher means more capable.
    """

    EAGER = 0
    COOPERATIVE = 1


def _sorted_partitions(partitions: Iterable[TopicPartitionTuple]) -> tuple[TopicPartition, ...]:
    return tuple(sorted({TopicPartition(str(t), int(p)) for t, p in partitions}))


def _bytes_or_none(data: Buffer | None) -> bytes | None:
    return data if data is None or isinstance(data, bytes) else bytes(data)


# The two classes below write their own __init__: it accepts what callers have (any
# collection, plain (topic, partition) tuples, any buffer) while the fields are typed as
# what is stored after normalising, so readers get TopicPartition values, not tuples.

@dataclass(frozen=True, init=False)
class Subscription:
    """One member's subscription as the leader sees it (Java's ``Subscription``).

    ``generation_id`` is ``-1`` when the member did not send one (subscription v0/v1), and
    ``group_instance_id`` comes from the JoinGroup response, not from the wire format.
    Topics and owned partitions are normalised to sorted, duplicate-free tuples (partitions
    as :class:`~streamclient.structs.TopicPartition`) so that equal subscriptions compare
    equal whatever order a peer wrote them in.
    """

    topics: tuple[str, ...]
    user_data: bytes | None
    owned_partitions: tuple[TopicPartition, ...]
    generation_id: int
    group_instance_id: str | None
    rack_id: str | None

    def __init__(
        self,
        topics: Collection[str] = (),
        user_data: Buffer | None = None,
        owned_partitions: Iterable[TopicPartitionTuple] = (),
        generation_id: int = NO_GENERATION,
        group_instance_id: str | None = None,
        rack_id: str | None = None,
    ) -> None:
        if isinstance(topics, str):
            raise PartitionAssignorError("Subscription.topics must be a collection, not a str")
        set_field = object.__setattr__  # frozen: the dataclass's own __init__ does the same
        set_field(self, "topics", tuple(sorted(set(topics))))
        set_field(self, "user_data", _bytes_or_none(user_data))
        set_field(self, "owned_partitions", _sorted_partitions(owned_partitions))
        set_field(self, "generation_id", generation_id)
        set_field(self, "group_instance_id", group_instance_id)
        set_field(self, "rack_id", rack_id)


@dataclass(frozen=True, init=False)
class Assignment:
    """The partitions given to one member (sorted ``TopicPartition`` values), plus opaque
    assignor data."""

    partitions: tuple[TopicPartition, ...]
    user_data: bytes | None

    def __init__(self, partitions: Iterable[TopicPartitionTuple] = (),
                 user_data: Buffer | None = None) -> None:
        object.__setattr__(self, "partitions", _sorted_partitions(partitions))
        object.__setattr__(self, "user_data", _bytes_or_none(user_data))

    def by_topic(self) -> dict[str, list[int]]:
        """Partitions grouped per topic, topics and partitions ascending."""
        grouped: dict[str, list[int]] = {}
        for topic, partition in self.partitions:
            grouped.setdefault(topic, []).append(partition)
        return grouped


def member_sort_key(member_id: str, group_instance_id: str | None) -> tuple[int, str, str]:
    """Java's ``MemberInfo`` order: static members first by instance id, then dynamic
    members by member id (which also breaks ties between equal instance ids)."""
    if group_instance_id is not None:
        return (0, group_instance_id, member_id)
    return (1, "", member_id)


def sorted_members(member_ids: Iterable[str], subscriptions: Mapping[str, Subscription]) -> list[str]:
    """Member ids in Java's ``MemberInfo`` order."""
    return sorted(member_ids, key=lambda m: member_sort_key(m, subscriptions[m].group_instance_id))


def partitions_per_topic(
    cluster_partitions: ClusterPartitions, topics: Iterable[str]
) -> dict[str, tuple[int, ...]]:
    """The sorted partition ids of every topic in ``topics`` that the cluster knows.

    Topics without metadata are left out: Java's assignors skip them too, and the consumer
    asks for a metadata refresh when a subscribed topic is missing.
    """
    result: dict[str, tuple[int, ...]] = {}
    for topic in sorted(set(topics)):
        if topic not in cluster_partitions:
            continue
        spec = cluster_partitions[topic]
        bad = PartitionAssignorError(
            f"partitions of topic {topic!r} must be a count or partition ids, got {spec!r}"
        )
        if isinstance(spec, (bool, str, bytes)) or not isinstance(spec, (int, Iterable)):
            raise bad
        if isinstance(spec, int):
            if spec < 0:
                raise PartitionAssignorError(f"topic {topic!r} has a negative partition count")
            ids: tuple[int, ...] = tuple(range(spec))
        else:
            values = list(spec)
            if not all(isinstance(p, int) and not isinstance(p, bool) for p in values):
                raise bad
            ids = tuple(sorted(set(values)))
            if ids and ids[0] < 0:
                raise PartitionAssignorError(f"topic {topic!r} has a negative partition id")
        result[topic] = ids
    return result


def all_subscribed_topics(subscriptions: Mapping[str, Subscription]) -> set[str]:
    topics: set[str] = set()
    for sub in subscriptions.values():
        topics.update(sub.topics)
    return topics


class ConsumerPartitionAssignor(abc.ABC):
    """The assignor interface (Java's ``ConsumerPartitionAssignor``), one instance per consumer.

    Subclasses set ``name`` (the protocol name sent in JoinGroup; members must agree on it)
    and may widen ``supported_protocols``.  The consumer calls
    :meth:`subscription_user_data` before each join, :meth:`assign` when it leads the group
    and :meth:`on_assignment` when the group hands it its partitions.
    """

    name: str = ""
    #: Rebalance protocols this assignor can run, in preference order (Java lists them so).
    supported_protocols: ClassVar[tuple[RebalanceProtocol, ...]] = (RebalanceProtocol.EAGER,)
    #: aiokafka's attribute; unused by the protocol, kept so code that reads it still works.
    version: ClassVar[int] = 0

    def subscription_user_data(self, topics: Collection[str]) -> bytes | None:
        """Opaque bytes sent with this member's subscription; ``None`` by default."""
        return None

    @abc.abstractmethod
    def assign(
        self,
        cluster_partitions: ClusterPartitions,
        subscriptions: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        """Assign the partitions of the subscribed topics to the members.

        Returns an :class:`Assignment` for every member id in ``subscriptions`` (possibly
        empty).  ``cluster_partitions`` may hold more topics than are subscribed.
        """

    def on_assignment(self, assignment: Assignment, generation: int) -> None:  # noqa: B027
        """Called with this member's assignment after each rebalance; no-op by default."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def select_rebalance_protocol(assignors: Sequence[ConsumerPartitionAssignor]) -> RebalanceProtocol:
    """The highest rebalance protocol that every configured assignor supports (Java's rule).

    So Java's default ``[range, cooperative-sticky]`` runs EAGER: range cannot cooperate.
    """
    if not assignors:
        raise KafkaConfigurationError("at least one partition assignor must be configured")
    common = set(RebalanceProtocol)
    for assignor in assignors:
        common &= set(assignor.supported_protocols)
    if not common:
        names = ", ".join(a.name for a in assignors)
        raise KafkaConfigurationError(
            f"the configured assignors ({names}) share no rebalance protocol"
        )
    return max(common)


def select_group_assignor(member_preferences: Mapping[str, Sequence[str]]) -> str:
    """The assignor a group coordinator picks for members that each list their assignors.

    Only names every member lists are candidates; each member votes for the first candidate
    in its own preference order and the most votes win.  Kafka breaks a tie in hash-map
    order; we take the smallest name so the choice is reproducible.
    """
    if not member_preferences:
        raise PartitionAssignorError("cannot choose an assignor for an empty group")
    candidates: set[str] | None = None
    for names in member_preferences.values():
        candidates = set(names) if candidates is None else candidates & set(names)
    if not candidates:
        raise PartitionAssignorError("the members support no common partition assignor")
    votes: Counter[str] = Counter()
    for names in member_preferences.values():
        votes[next(n for n in names if n in candidates)] += 1
    return min(votes, key=lambda n: (-votes[n], n))


def empty_assignments(subscriptions: Mapping[str, object]) -> dict[str, list[TopicPartitionTuple]]:
    return {member: [] for member in subscriptions}


def to_assignments(
    partitions: Mapping[str, Iterable[TopicPartitionTuple]],
) -> dict[str, Assignment]:
    return {member: Assignment(tuple(tps)) for member, tps in partitions.items()}
