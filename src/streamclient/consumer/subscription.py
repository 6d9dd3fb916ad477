"""``SubscriptionState``: what the consumer reads and where it stands in each partition.

Kafka's ``SubscriptionState`` (sans-IO): the subscription (topics, a pattern, or a manual
assignment — mutually exclusive), the assigned partitions in a stable order, and per
partition the fetch position, the fetch state, pause flag and the offsets the last fetch
reported.  The fetcher, the group coordinator and the facade share one instance; every
method is synchronous and takes the time as ``now_ms`` where it needs one.

Partition states:

- ``INITIALIZING``: assigned, no position yet — the committed offset must be looked up;
- ``AWAIT_RESET``: the position must come from ListOffsets with ``reset_strategy``;
- ``AWAIT_VALIDATION``: has a position with a leader epoch, and the partition's leader
  changed since it was taken: no fetching until OffsetForLeaderEpoch confirms the new
  leader's log reaches the position (KIP-320, see :mod:`streamclient.consumer.validation`);
- ``FETCHING``: has a position and can be fetched (unless paused or pending revocation).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from streamclient.consumer.config import ConsumerConfig
from streamclient.consumer.offsets import FetchPosition, OffsetResetStrategy
from streamclient.errors import IllegalArgumentError, IllegalStateError
from streamclient.structs import OffsetAndMetadata, TopicPartition

__all__ = [
    "FetchState",
    "InvalidPatternError",
    "PartitionState",
    "SubscriptionState",
    "SubscriptionType",
]


class InvalidPatternError(IllegalArgumentError, ValueError):
    """The subscription pattern is not a valid regular expression (a ``ValueError`` as in
    aiokafka)."""


class SubscriptionType(enum.Enum):
    NONE = "none"
    AUTO_TOPICS = "topics"
    AUTO_PATTERN = "pattern"
    USER_ASSIGNED = "assigned"


class FetchState(enum.Enum):
    INITIALIZING = "initializing"
    AWAIT_RESET = "await_reset"
    AWAIT_VALIDATION = "await_validation"
    FETCHING = "fetching"


@dataclass
class PartitionState:
    """One assigned partition (Java's ``TopicPartitionState``)."""

    fetch_state: FetchState = FetchState.INITIALIZING
    position: FetchPosition | None = None
    reset_strategy: OffsetResetStrategy | None = None
    # a failed ListOffsets for this partition is not retried before this time
    next_reset_allowed_ms: int = 0
    paused: bool = False
    # cooperative rebalance: still assigned (the listener may commit it) but not fetched
    pending_revocation: bool = False
    high_watermark: int | None = None
    last_stable_offset: int | None = None
    log_start_offset: int | None = None
    last_poll_timestamp_ms: int | None = None
    # KIP-392: the follower the leader told us to read from, until it expires
    preferred_read_replica: int | None = None
    preferred_read_replica_expires_ms: int = 0
    # the partition's leader and its epoch as metadata last reported them (the epoch goes
    # in FetchRequest; a change of either makes a position with an epoch await validation)
    current_leader: int | None = None
    current_leader_epoch: int | None = None
    # a failed OffsetForLeaderEpoch for this partition is not retried before this time
    next_validation_allowed_ms: int = 0

    @property
    def has_valid_position(self) -> bool:
        return self.fetch_state is FetchState.FETCHING and self.position is not None

    @property
    def is_fetchable(self) -> bool:
        return self.has_valid_position and not self.paused and not self.pending_revocation


class SubscriptionState:
    """The subscription, the assignment and each assigned partition's state."""

    def __init__(
        self,
        default_reset_strategy: OffsetResetStrategy = OffsetResetStrategy.LATEST,
        *,
        exclude_internal_topics: bool = True,
    ) -> None:
        self.default_reset_strategy = default_reset_strategy
        self.exclude_internal_topics = exclude_internal_topics
        self.subscription_type = SubscriptionType.NONE
        self._topics: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        # the union of every member's topics, when this member leads the group
        self._group_subscription: frozenset[str] = frozenset()
        # insertion order is the fetch order; move_partition_to_end() rotates it
        self._assignment: dict[TopicPartition, PartitionState] = {}
        # bumped on every assignment change so an in-flight fetch can tell it is stale
        self.assignment_id = 0

    @classmethod
    def from_config(cls, config: ConsumerConfig) -> SubscriptionState:
        return cls(
            OffsetResetStrategy.from_policy(config.auto_offset_reset),
            exclude_internal_topics=config.exclude_internal_topics,
        )

    # --- subscription ---------------------------------------------------------------

    def _set_type(self, kind: SubscriptionType) -> None:
        if self.subscription_type is SubscriptionType.NONE:
            self.subscription_type = kind
        elif self.subscription_type is not kind:
            raise IllegalStateError(
                "Subscription to topics, partitions and pattern are mutually exclusive"
            )

    def subscribe(self, topics: Iterable[str]) -> bool:
        """Subscribe to exactly ``topics``; returns whether the subscription changed."""
        names = frozenset(topics)
        for name in names:
            if not isinstance(name, str) or not name:
                raise IllegalArgumentError(f"topic names must be non-empty strings: {name!r}")
        self._set_type(SubscriptionType.AUTO_TOPICS)
        return self._change_topics(names)

    def subscribe_pattern(self, pattern: str | re.Pattern[str]) -> None:
        """Subscribe to every topic matching ``pattern``.

        Matched with ``re.match`` (anchored at the start of the name, not at its end) as
        aiokafka does, so ``"orders"`` also takes ``"orders-eu"``; Java matches the whole
        name.  End the pattern with ``$`` for Java's behaviour.
        """
        if isinstance(pattern, str):
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise InvalidPatternError(
                    f"invalid subscription pattern {pattern!r}: {exc}"
                ) from None
        elif isinstance(pattern, re.Pattern):
            compiled = pattern
        else:
            raise IllegalArgumentError(f"pattern must be a str or re.Pattern, not {pattern!r}")
        self._set_type(SubscriptionType.AUTO_PATTERN)
        self._pattern = compiled

    def subscribe_from_pattern(
        self, metadata_topics: Iterable[str], internal_topics: Collection[str] = ()
    ) -> bool:
        """Set the subscribed topics to those in ``metadata_topics`` that match the
        pattern, leaving out internal topics when so configured.  Returns whether the set
        changed (the group must then rejoin)."""
        if self.subscription_type is not SubscriptionType.AUTO_PATTERN or self._pattern is None:
            raise IllegalStateError("not subscribed to a pattern")
        matched = frozenset(
            t
            for t in metadata_topics
            if self._pattern.match(t)
            and not (self.exclude_internal_topics and t in internal_topics)
        )
        return self._change_topics(matched)

    def _change_topics(self, names: frozenset[str]) -> bool:
        if names == self._topics:
            return False
        self._topics = names
        return True

    def unsubscribe(self) -> None:
        """Drop the subscription, the pattern and the assignment."""
        self.subscription_type = SubscriptionType.NONE
        self._topics = frozenset()
        self._pattern = None
        self._group_subscription = frozenset()
        self._replace_assignment(())

    @property
    def subscription(self) -> frozenset[str]:
        """The subscribed topics (empty for a manual assignment)."""
        return self._topics

    @property
    def pattern(self) -> re.Pattern[str] | None:
        return self._pattern

    @property
    def has_auto_assigned_partitions(self) -> bool:
        return self.subscription_type in (
            SubscriptionType.AUTO_TOPICS,
            SubscriptionType.AUTO_PATTERN,
        )

    @property
    def is_user_assigned(self) -> bool:
        return self.subscription_type is SubscriptionType.USER_ASSIGNED

    @property
    def group_subscription(self) -> frozenset[str]:
        """Our topics plus, on the leader, every other member's (metadata must cover them)."""
        return self._group_subscription | self._topics

    def set_group_subscription(self, topics: Iterable[str]) -> None:
        """The leader records every member's topics so its metadata covers them."""
        self._group_subscription = frozenset(topics)

    def reset_group_subscription(self) -> None:
        self._group_subscription = frozenset()

    # --- assignment -----------------------------------------------------------------

    def assign(self, partitions: Iterable[TopicPartition]) -> bool:
        """Manual assignment (no group management); returns whether it changed."""
        tps = list(dict.fromkeys(_check_tp(tp) for tp in partitions))
        self._set_type(SubscriptionType.USER_ASSIGNED)
        changed = set(tps) != set(self._assignment)
        self._replace_assignment(tps)
        self._topics = frozenset()
        return changed

    def assign_from_subscribed(self, partitions: Iterable[TopicPartition]) -> None:
        """Install the group's assignment; partitions kept keep their state."""
        if not self.has_auto_assigned_partitions:
            raise IllegalStateError(
                "assign_from_subscribed() needs a topic or pattern subscription"
            )
        tps = list(dict.fromkeys(_check_tp(tp) for tp in partitions))
        foreign = sorted(tp for tp in tps if tp.topic not in self._topics)
        if foreign:
            raise IllegalArgumentError(f"assigned partitions of unsubscribed topics: {foreign}")
        self._replace_assignment(tps)

    def add_assigned(self, partitions: Iterable[TopicPartition]) -> list[TopicPartition]:
        """Cooperative: add partitions (new ones start INITIALIZING); returns those added."""
        added = []
        for tp in partitions:
            _check_tp(tp)
            if tp not in self._assignment:
                self._assignment[tp] = PartitionState()
                added.append(tp)
        if added:
            self.assignment_id += 1
        return added

    def remove_assigned(self, partitions: Iterable[TopicPartition]) -> list[TopicPartition]:
        """Cooperative: drop partitions (and their state); returns those removed."""
        removed = [tp for tp in partitions if self._assignment.pop(tp, None) is not None]
        if removed:
            self.assignment_id += 1
        return removed

    def _replace_assignment(self, tps: Iterable[TopicPartition]) -> None:
        old = self._assignment
        self._assignment = {tp: old.get(tp) or PartitionState() for tp in tps}
        self.assignment_id += 1

    def assigned_partitions(self) -> set[TopicPartition]:
        return set(self._assignment)

    def owned_partitions(self) -> list[TopicPartition]:
        """Assigned partitions not pending revocation, in assignment order."""
        return [tp for tp, st in self._assignment.items() if not st.pending_revocation]

    def is_assigned(self, tp: TopicPartition) -> bool:
        return tp in self._assignment

    def state(self, tp: TopicPartition) -> PartitionState:
        """The state of an assigned partition; ``IllegalStateError`` if not assigned."""
        try:
            return self._assignment[tp]
        except KeyError:
            raise IllegalStateError(f"No current assignment for partition {tp}") from None

    def mark_pending_revocation(self, partitions: Iterable[TopicPartition]) -> None:
        """Stop fetching ``partitions`` while the revocation listener runs (Java's
        ``markPendingRevocation``): they stay assigned so the listener can commit them."""
        for tp in partitions:
            st = self._assignment.get(tp)
            if st is not None:
                st.pending_revocation = True

    def move_partition_to_end(self, tp: TopicPartition) -> None:
        """Rotate the fetch order so a busy partition does not starve the others."""
        st = self._assignment.pop(tp, None)
        if st is not None:
            self._assignment[tp] = st

    # --- positions ------------------------------------------------------------------

    def seek(self, tp: TopicPartition, offset: int, leader_epoch: int | None = None) -> None:
        """Start fetching ``tp`` at ``offset`` (a pending reset or lookup is abandoned).

        ``leader_epoch`` is the epoch of the record before ``offset`` (a committed offset's
        ``committed_leader_epoch``): with it, and a leader epoch known from metadata, the
        position is validated against the leader's log first (Java's ``seekUnvalidated``);
        without it, fetching starts at once.
        """
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise IllegalArgumentError(f"offset must be an int >= 0, not {offset!r}")
        if leader_epoch is not None and (
            isinstance(leader_epoch, bool) or not isinstance(leader_epoch, int) or leader_epoch < 0
        ):
            raise IllegalArgumentError(
                f"leader_epoch must be an int >= 0 or None, not {leader_epoch!r}"
            )
        st = self.state(tp)
        st.position = FetchPosition(offset, leader_epoch)
        st.reset_strategy = None
        st.next_reset_allowed_ms = 0
        st.next_validation_allowed_ms = 0
        self._validate_position(st)

    @staticmethod
    def _validate_position(st: PartitionState) -> None:
        """Java's ``validatePosition``: a position whose epoch can be checked against a
        known leader epoch awaits validation; any other fetches at once."""
        if (
            st.position is not None
            and st.position.leader_epoch is not None
            and st.current_leader_epoch is not None
        ):
            st.fetch_state = FetchState.AWAIT_VALIDATION
        else:
            st.fetch_state = FetchState.FETCHING

    def position(self, tp: TopicPartition) -> FetchPosition | None:
        return self.state(tp).position

    def advance(self, tp: TopicPartition, position: FetchPosition) -> None:
        """Move the position forward after records were handed out (fetcher only).

        Ignored when a seek or reset happened meanwhile: the records came from the old
        position, so they must not override the new one.
        """
        st = self._assignment.get(tp)
        if st is not None and st.fetch_state is FetchState.FETCHING:
            st.position = position

    def request_offset_reset(
        self, tp: TopicPartition, strategy: OffsetResetStrategy | None = None
    ) -> None:
        """Make ``tp`` wait for a ListOffsets reset (default: ``auto_offset_reset``)."""
        st = self.state(tp)
        chosen = self.default_reset_strategy if strategy is None else strategy
        if chosen is OffsetResetStrategy.NONE:
            raise IllegalArgumentError("cannot reset an offset with strategy NONE")
        st.fetch_state = FetchState.AWAIT_RESET
        st.reset_strategy = chosen
        st.position = None
        st.next_reset_allowed_ms = 0

    def reset_failed(self, tp: TopicPartition, next_allowed_ms: int) -> None:
        """A ListOffsets for ``tp`` failed: back off before asking again."""
        st = self._assignment.get(tp)
        if st is not None and st.fetch_state is FetchState.AWAIT_RESET:
            st.next_reset_allowed_ms = next_allowed_ms

    def complete_reset(
        self,
        tp: TopicPartition,
        strategy: OffsetResetStrategy,
        offset: int,
        leader_epoch: int | None = None,
    ) -> bool:
        """Apply a ListOffsets answer, unless the partition was reassigned, seeked or reset
        with another strategy while the request was out.  Returns whether applied."""
        st = self._assignment.get(tp)
        if st is None or st.fetch_state is not FetchState.AWAIT_RESET:
            return False
        if st.reset_strategy is not strategy:
            return False
        # The offset came from the current leader a moment ago, so it is not validated
        # (Java skips it too); the epoch is kept so a later leader change can be checked.
        st.position = FetchPosition(offset, leader_epoch)
        st.fetch_state = FetchState.FETCHING
        st.reset_strategy = None
        return True

    # --- validation after a leader change (KIP-320) --------------------------------------

    def update_leader(
        self,
        tp: TopicPartition,
        leader: int | None,
        leader_epoch: int | None,
        *,
        validate: bool = True,
    ) -> bool:
        """Record the partition's leader as metadata reports it (Java's
        ``maybeValidatePositionForCurrentLeader``).

        When the leader or its epoch changed and the position carries an epoch, the
        partition awaits validation; with ``validate=False`` (a leader that cannot answer
        OffsetForLeaderEpoch) it keeps or resumes fetching instead.  An unknown leader
        changes nothing.  Returns whether the partition awaits validation.
        """
        st = self._assignment.get(tp)
        if st is None:
            return False
        if leader is None or leader < 0:
            return st.fetch_state is FetchState.AWAIT_VALIDATION
        epoch = leader_epoch if leader_epoch is not None and leader_epoch >= 0 else None
        changed = (leader, epoch) != (st.current_leader, st.current_leader_epoch)
        st.current_leader = leader
        st.current_leader_epoch = epoch
        if st.position is not None and st.fetch_state in (
            FetchState.FETCHING,
            FetchState.AWAIT_VALIDATION,
        ):
            if not validate:
                st.fetch_state = FetchState.FETCHING
            elif changed:
                st.next_validation_allowed_ms = 0
                self._validate_position(st)
        return st.fetch_state is FetchState.AWAIT_VALIDATION

    def partitions_needing_validation(self, now_ms: int) -> dict[TopicPartition, FetchPosition]:
        """Partitions awaiting validation whose backoff has passed, with their position."""
        return {
            tp: st.position
            for tp, st in self._assignment.items()
            if st.fetch_state is FetchState.AWAIT_VALIDATION
            and st.position is not None
            and st.next_validation_allowed_ms <= now_ms
        }

    def next_validation_ms(self) -> int | None:
        """When the earliest backed-off validation may be retried (``None``: none waits)."""
        times = [
            st.next_validation_allowed_ms
            for st in self._assignment.values()
            if st.fetch_state is FetchState.AWAIT_VALIDATION
        ]
        return min(times) if times else None

    def awaiting_validation(self, tp: TopicPartition) -> bool:
        st = self._assignment.get(tp)
        return st is not None and st.fetch_state is FetchState.AWAIT_VALIDATION

    def complete_validation(self, tp: TopicPartition) -> None:
        """The position stands (validated, or the leader cannot be asked): fetch again."""
        st = self._assignment.get(tp)
        if st is not None and st.fetch_state is FetchState.AWAIT_VALIDATION:
            st.fetch_state = FetchState.FETCHING

    def validation_failed(self, tp: TopicPartition, next_allowed_ms: int) -> None:
        """An OffsetForLeaderEpoch for ``tp`` failed: back off before asking again."""
        st = self._assignment.get(tp)
        if st is not None and st.fetch_state is FetchState.AWAIT_VALIDATION:
            st.next_validation_allowed_ms = next_allowed_ms

    def seek_validated(self, tp: TopicPartition, position: FetchPosition) -> None:
        """Move an awaiting partition to ``position`` (the divergence point) and fetch."""
        st = self.state(tp)
        st.position = position
        st.fetch_state = FetchState.FETCHING
        st.reset_strategy = None

    def partitions_needing_reset(self, now_ms: int) -> dict[TopicPartition, OffsetResetStrategy]:
        """Partitions awaiting a reset whose backoff has passed, with their strategy."""
        return {
            tp: st.reset_strategy
            for tp, st in self._assignment.items()
            if st.fetch_state is FetchState.AWAIT_RESET
            and st.reset_strategy is not None
            and st.next_reset_allowed_ms <= now_ms
        }

    def initializing_partitions(self) -> list[TopicPartition]:
        """Partitions whose committed offset must be looked up."""
        return [
            tp for tp, st in self._assignment.items() if st.fetch_state is FetchState.INITIALIZING
        ]

    def has_all_fetch_positions(self) -> bool:
        return all(st.has_valid_position for st in self._assignment.values())

    def has_valid_position(self, tp: TopicPartition) -> bool:
        st = self._assignment.get(tp)
        return st is not None and st.has_valid_position

    def all_consumed(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """The positions to commit: every partition with a valid position."""
        return {
            tp: OffsetAndMetadata(st.position.offset, "")
            for tp, st in self._assignment.items()
            if st.has_valid_position and st.position is not None
        }

    def consumed_leader_epochs(self) -> dict[TopicPartition, int]:
        """The leader epoch beside each position in :meth:`all_consumed`, where known."""
        return {
            tp: st.position.leader_epoch
            for tp, st in self._assignment.items()
            if st.has_valid_position
            and st.position is not None
            and st.position.leader_epoch is not None
        }

    # --- fetching -------------------------------------------------------------------

    def fetchable_partitions(self) -> list[TopicPartition]:
        """Partitions the fetcher may ask for now, in fetch order."""
        return [tp for tp, st in self._assignment.items() if st.is_fetchable]

    def is_fetchable(self, tp: TopicPartition) -> bool:
        st = self._assignment.get(tp)
        return st is not None and st.is_fetchable

    def pause(self, tp: TopicPartition) -> None:
        self.state(tp).paused = True

    def resume(self, tp: TopicPartition) -> None:
        self.state(tp).paused = False

    def paused(self) -> set[TopicPartition]:
        return {tp for tp, st in self._assignment.items() if st.paused}

    def is_paused(self, tp: TopicPartition) -> bool:
        st = self._assignment.get(tp)
        return st is not None and st.paused

    def update_fetch_offsets(
        self,
        tp: TopicPartition,
        *,
        high_watermark: int | None = None,
        last_stable_offset: int | None = None,
        log_start_offset: int | None = None,
    ) -> None:
        """Record what a fetch response said about the partition (negatives: unknown)."""
        st = self._assignment.get(tp)
        if st is None:
            return
        if high_watermark is not None and high_watermark >= 0:
            st.high_watermark = high_watermark
        if last_stable_offset is not None and last_stable_offset >= 0:
            st.last_stable_offset = last_stable_offset
        if log_start_offset is not None and log_start_offset >= 0:
            st.log_start_offset = log_start_offset

    def record_poll(self, tp: TopicPartition, now_ms: int) -> None:
        st = self._assignment.get(tp)
        if st is not None:
            st.last_poll_timestamp_ms = now_ms

    def set_preferred_read_replica(self, tp: TopicPartition, node_id: int, expires_ms: int) -> None:
        st = self._assignment.get(tp)
        if st is not None:
            st.preferred_read_replica = node_id
            st.preferred_read_replica_expires_ms = expires_ms

    def preferred_read_replica(self, tp: TopicPartition, now_ms: int) -> int | None:
        """The follower to fetch from, or ``None`` (the leader) once the hint expired."""
        st = self._assignment.get(tp)
        if st is None or st.preferred_read_replica is None:
            return None
        if now_ms >= st.preferred_read_replica_expires_ms:
            st.preferred_read_replica = None
            return None
        return st.preferred_read_replica

    def clear_preferred_read_replica(self, tp: TopicPartition) -> None:
        st = self._assignment.get(tp)
        if st is not None:
            st.preferred_read_replica = None

    def set_leader_epoch(self, tp: TopicPartition, epoch: int | None) -> None:
        """Set the epoch sent in FetchRequest without validating anything (tests and
        callers that track leaders themselves; the fetcher uses :meth:`update_leader`)."""
        st = self._assignment.get(tp)
        if st is not None:
            st.current_leader_epoch = epoch


def _check_tp(tp: object) -> TopicPartition:
    if not isinstance(tp, tuple) or len(tp) != 2:
        raise IllegalArgumentError(f"expected a TopicPartition, got {tp!r}")
    topic, partition = tp
    if not isinstance(topic, str) or isinstance(partition, bool) or not isinstance(partition, int):
        raise IllegalArgumentError(f"expected a TopicPartition, got {tp!r}")
    return tp if isinstance(tp, TopicPartition) else TopicPartition(topic, partition)
