"""aiokafka-style assignors, and turning ``partition_assignment_strategy`` into instances.

aiokafka's assignors are classes used through classmethods: ``name``, ``metadata(topics)``,
``assign(cluster, members)`` and ``on_assignment(assignment)`` (``aiokafka.coordinator.
assignors.abstract.AbstractPartitionAssignor``).  Code written against that interface keeps
working here: subclass :class:`AbstractPartitionAssignor` from this package (or aiokafka's
own) and pass the class; :func:`resolve_assignor` wraps it in an
:class:`AiokafkaAssignorAdapter`.  The adapter also calls ``on_generation_assignment`` when
the class has it, which aiokafka never does (aiokafka #1176).

Our own assignors are instances with per-consumer state; passing their class is fine too,
each consumer then gets a fresh instance.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from streamclient.consumer.assignors.abstract import (
    Assignment,
    ClusterPartitions,
    ConsumerPartitionAssignor,
    PartitionAssignorError,
    Subscription,
    TopicPartitionTuple,
    all_subscribed_topics,
    partitions_per_topic,
)
from streamclient.errors import KafkaConfigurationError


class ConsumerProtocolMemberMetadata(NamedTuple):
    """aiokafka's decoded subscription (``aiokafka.coordinator.protocol``)."""

    version: int
    subscription: list[str]
    user_data: bytes | None


class _TopicAssignment(NamedTuple):
    topic: str
    partitions: list[int]


@dataclass
class ConsumerProtocolMemberAssignment:
    """aiokafka's decoded assignment: ``assignment`` is ``[(topic, [partition, ...]), ...]``."""

    version: int = 0
    assignment: list[tuple[str, list[int]]] = field(default_factory=list)
    user_data: bytes | None = None

    Assignment = _TopicAssignment

    def partitions(self) -> list[TopicPartitionTuple]:
        return [(topic, p) for topic, ps in self.assignment for p in ps]


class ClusterView:
    """The read-only part of aiokafka's ``ClusterMetadata`` that assignors use."""

    def __init__(self, partitions: Mapping[str, Sequence[int]]) -> None:
        self._partitions = partitions

    def topics(self) -> set[str]:
        return set(self._partitions)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        partitions = self._partitions.get(topic)
        return None if partitions is None else set(partitions)

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions_for_topic(topic)


class AbstractPartitionAssignor(abc.ABC):
    """aiokafka's assignor interface, for user code written against aiokafka.

    Implement ``name`` and the three classmethods exactly as for aiokafka; pass the class
    in ``partition_assignment_strategy``.  New code should subclass
    :class:`~streamclient.consumer.assignors.ConsumerPartitionAssignor` instead.
    """

    version = 0

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The protocol name shared by all members that use this assignor."""

    @classmethod
    @abc.abstractmethod
    def assign(
        cls, cluster: ClusterView, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        """Assign partitions to the members (run on the group leader)."""

    @classmethod
    @abc.abstractmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        """The subscription metadata this member sends."""

    @classmethod
    @abc.abstractmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        """Called with this member's assignment."""


def _is_aiokafka_style(spec: Any) -> bool:
    return all(hasattr(spec, attr) for attr in ("name", "assign", "metadata", "on_assignment"))


class AiokafkaAssignorAdapter(ConsumerPartitionAssignor):
    """Runs an aiokafka-style assignor (class or instance) behind our interface."""

    def __init__(self, wrapped: Any) -> None:
        name = wrapped.name
        if not isinstance(name, str) or not name:
            raise KafkaConfigurationError(f"assignor {wrapped!r} has no protocol name")
        self.wrapped = wrapped
        self.name = name

    def subscription_user_data(self, topics: Collection[str]) -> bytes | None:
        metadata = self.wrapped.metadata(set(topics))
        user_data = getattr(metadata, "user_data", None)
        return None if user_data is None else bytes(user_data)

    def assign(
        self,
        cluster_partitions: ClusterPartitions,
        subscriptions: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        cluster = ClusterView(
            partitions_per_topic(cluster_partitions, all_subscribed_topics(subscriptions))
        )
        members = {
            member: ConsumerProtocolMemberMetadata(0, list(sub.topics), sub.user_data)
            for member, sub in subscriptions.items()
        }
        result = self.wrapped.assign(cluster, members)
        if not isinstance(result, Mapping):
            raise PartitionAssignorError(
                f"assignor {self.name!r} returned {type(result).__name__}, not a mapping"
            )
        assignments = {member: Assignment() for member in subscriptions}
        for member, value in result.items():
            if member not in subscriptions:
                raise PartitionAssignorError(
                    f"assignor {self.name!r} assigned to unknown member {member!r}"
                )
            assignments[member] = _from_aiokafka(self.name, value)
        return assignments

    def on_assignment(self, assignment: Assignment, generation: int) -> None:
        self.wrapped.on_assignment(
            ConsumerProtocolMemberAssignment(
                0,
                [_TopicAssignment(t, ps) for t, ps in assignment.by_topic().items()],
                assignment.user_data,
            )
        )
        on_generation = getattr(self.wrapped, "on_generation_assignment", None)
        if callable(on_generation):
            on_generation(generation)


def _from_aiokafka(name: str, value: Any) -> Assignment:
    try:
        pairs = value.assignment
        partitions = [(str(topic), int(p)) for topic, ps in pairs for p in ps]
    except (AttributeError, TypeError, ValueError) as exc:
        raise PartitionAssignorError(
            f"assignor {name!r} returned an assignment that is not "
            f"[(topic, [partition, ...]), ...]: {value!r}"
        ) from exc
    user_data = getattr(value, "user_data", None)
    return Assignment(partitions, None if user_data is None else bytes(user_data))


def resolve_assignor(spec: Any) -> ConsumerPartitionAssignor:
    """One ``partition_assignment_strategy`` entry as an assignor instance.

    Accepts an instance or subclass of :class:`ConsumerPartitionAssignor` (a class is
    instantiated, so each consumer has its own state) or an aiokafka-style assignor.
    """
    if isinstance(spec, ConsumerPartitionAssignor):
        return spec
    if isinstance(spec, type) and issubclass(spec, ConsumerPartitionAssignor):
        return spec()
    if _is_aiokafka_style(spec):
        return AiokafkaAssignorAdapter(spec)
    raise KafkaConfigurationError(
        f"{spec!r} is not a partition assignor: expected a ConsumerPartitionAssignor "
        "(class or instance) or an aiokafka-style assignor class"
    )


def resolve_assignors(specs: Iterable[Any]) -> list[ConsumerPartitionAssignor]:
    """All entries of ``partition_assignment_strategy``, names unique, order kept."""
    assignors = [resolve_assignor(spec) for spec in specs]
    if not assignors:
        raise KafkaConfigurationError("partition_assignment_strategy must not be empty")
    names = [a.name for a in assignors]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise KafkaConfigurationError(f"assignor names must be unique, repeated: {duplicates}")
    return assignors
