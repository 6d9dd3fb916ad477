"""The classic group membership state machine (JoinGroup / SyncGroup / Heartbeat /
LeaveGroup), sans-IO.

``GroupMembership`` takes responses and ``now_ms`` and answers with a list of
:data:`Action` values that the async coordinator loop executes **in order**:

- :class:`CommitOffsets` — commit these offsets now (auto-commit before a revocation);
- :class:`InvokeListener` — call the rebalance listener's revoked / assigned / lost;
- :class:`ReleasePartitions` — after the listener ran, call :meth:`GroupMembership.release`
  (the partitions stayed assigned, unfetched, so the listener could still commit them);
- :class:`SendJoinGroup` — send :meth:`GroupMembership.join_group_request` and feed the
  answer to :meth:`GroupMembership.on_join_response`;
- :class:`RunAssignment` — (leader) make sure metadata covers ``topics``, then call
  :meth:`GroupMembership.assign` with the partition counts;
- :class:`SendSyncGroup` / :class:`SendLeaveGroup` — send the request carried;
- :class:`Rejoin` — after ``delay_ms``, call :meth:`GroupMembership.start_join` again;
- :class:`FindCoordinator` — forget the coordinator, rediscover it, then rejoin if needed.

Fatal conditions (fenced static member, authorization, inconsistent protocol, …) raise
the typed error from the method that met them; the loop stores it as the consumer's fatal
error.

The rebalance follows the Java client's ``ConsumerCoordinator`` (java-client-internals §3.5):
EAGER revokes everything before joining; COOPERATIVE (KIP-429) keeps its partitions through
the join, revokes only those it no longer owns after the sync and rejoins once more so that
their new owners get them.  A member whose generation was reset (its session expired or the
coordinator forgot it) reports its partitions as *lost* instead of revoked.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from streamclient.consumer.assignors import (
    NO_GENERATION,
    Assignment,
    ClusterPartitions,
    ConsumerPartitionAssignor,
    CooperativeStickyAssignor,
    RebalanceProtocol,
    Subscription,
    select_rebalance_protocol,
)
from streamclient.consumer.config import ConsumerConfig
from streamclient.consumer.group.actions import (
    Action,
    CommitOffsets,
    FindCoordinator,
    InvokeListener,
    ListenerCallback,
    Rejoin,
    ReleasePartitions,
    RunAssignment,
    SendJoinGroup,
    SendLeaveGroup,
    SendSyncGroup,
)
from streamclient.consumer.group.commits import (
    CommitOutcome,
    GenerationReset,
    classify_commit_response,
    offset_commit_request,
)
from streamclient.consumer.group.consumer_protocol import (
    PROTOCOL_TYPE,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from streamclient.consumer.group.heartbeat import HeartbeatTimers
from streamclient.consumer.subscription import SubscriptionState
from streamclient.errors import (
    FencedInstanceIdError,
    GroupAuthorizationFailedError,
    GroupCoordinatorNotAvailableError,
    GroupLoadInProgressError,
    IllegalGenerationError,
    IllegalStateError,
    InconsistentGroupProtocolError,
    KafkaError,
    MemberIdRequired,
    NotCoordinatorForGroupError,
    RebalanceInProgressError,
    UnknownMemberIdError,
    for_code,
)
from streamclient.protocol.messages.heartbeat import HeartbeatRequest, HeartbeatResponse
from streamclient.protocol.messages.join_group import JoinGroupRequest, JoinGroupResponse
from streamclient.protocol.messages.offset_commit import OffsetCommitRequest, OffsetCommitResponse
from streamclient.protocol.messages.sync_group import SyncGroupRequest, SyncGroupResponse
from streamclient.structs import OffsetAndMetadata, TopicPartition

__all__ = [
    "Action",
    "CommitOffsets",
    "ConsumerGroupMetadata",
    "FindCoordinator",
    "Generation",
    "GroupMembership",
    "InvokeListener",
    "ListenerCallback",
    "MemberState",
    "Rejoin",
    "ReleasePartitions",
    "RunAssignment",
    "SendJoinGroup",
    "SendLeaveGroup",
    "SendSyncGroup",
]


class MemberState(enum.Enum):
    UNJOINED = "unjoined"
    PREPARING_REBALANCE = "preparing_rebalance"  # JoinGroup sent, awaiting its answer
    COMPLETING_REBALANCE = "completing_rebalance"  # SyncGroup sent, awaiting its answer
    STABLE = "stable"

    # the names the rest of the code base may know them by
    JOINING = "preparing_rebalance"
    AWAITING_SYNC = "completing_rebalance"


@dataclass(frozen=True, slots=True)
class Generation:
    generation_id: int = NO_GENERATION
    member_id: str = ""
    protocol_name: str | None = None


NO_MEMBER = Generation()


@dataclass(frozen=True, slots=True)
class ConsumerGroupMetadata:
    """The member's identity for a transactional producer's offset commit (KIP-447:
    ``send_offsets_to_transaction`` fences commits from a stale generation with it)."""

    group_id: str
    generation_id: int = NO_GENERATION
    member_id: str = ""
    group_instance_id: str | None = None


_COORDINATOR_GONE = (NotCoordinatorForGroupError, GroupCoordinatorNotAvailableError)


def _sorted(partitions: Iterable[TopicPartition]) -> tuple[TopicPartition, ...]:
    return tuple(sorted(partitions))


class GroupMembership:
    """One member of one consumer group (Java's ``AbstractCoordinator`` state plus the
    ``ConsumerCoordinator`` rebalance logic)."""

    def __init__(
        self,
        *,
        group_id: str,
        subscription: SubscriptionState,
        assignors: Sequence[ConsumerPartitionAssignor],
        now_ms: int,
        group_instance_id: str | None = None,
        session_timeout_ms: int = 10_000,
        rebalance_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        max_poll_interval_ms: int = 300_000,
        retry_backoff_ms: int = 100,
        enable_auto_commit: bool = False,
        client_rack: str | None = None,
    ) -> None:
        if not assignors:
            raise IllegalStateError("a group member needs at least one assignor")
        self.group_id = group_id
        self.group_instance_id = group_instance_id
        self.subscription = subscription
        self.assignors = list(assignors)
        self.protocol = select_rebalance_protocol(self.assignors)
        self.session_timeout_ms = session_timeout_ms
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.retry_backoff_ms = retry_backoff_ms
        self.enable_auto_commit = enable_auto_commit
        self.client_rack = client_rack
        self.timers = HeartbeatTimers(
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            max_poll_interval_ms=max_poll_interval_ms,
            retry_backoff_ms=retry_backoff_ms,
            now_ms=now_ms,
        )
        self.state = MemberState.UNJOINED
        self.generation = NO_MEMBER
        self.is_leader = False
        self.rejoin_needed = True
        self.rejoin_reason = "initial join"
        # the revocation/loss of onJoinPrepare runs once per rebalance, not per JoinGroup
        self._needs_join_prepare = True
        self._member_subscriptions: dict[str, Subscription] = {}
        # what the last join was based on, to notice when it no longer holds
        self._joined_topics: frozenset[str] = frozenset()
        self._assignment_snapshot: dict[str, int] | None = None

    @classmethod
    def from_config(
        cls, config: ConsumerConfig, subscription: SubscriptionState, now_ms: int
    ) -> GroupMembership:
        """The member a consumer with ``config`` (which must name a group) runs."""
        if config.group_id is None:
            raise IllegalStateError("group membership needs a group_id")
        return cls(
            group_id=config.group_id,
            subscription=subscription,
            assignors=config.assignors,
            now_ms=now_ms,
            group_instance_id=config.group_instance_id,
            session_timeout_ms=config.session_timeout_ms,
            rebalance_timeout_ms=config.effective_rebalance_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
            max_poll_interval_ms=config.max_poll_interval_ms,
            retry_backoff_ms=config.retry_backoff_ms,
            enable_auto_commit=config.enable_auto_commit,
            client_rack=config.client_rack,
        )

    # --- identity ---------------------------------------------------------------------

    @property
    def member_id(self) -> str:
        return self.generation.member_id

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    def group_metadata(self) -> ConsumerGroupMetadata:
        return ConsumerGroupMetadata(
            self.group_id,
            self.generation.generation_id,
            self.generation.member_id,
            self.group_instance_id,
        )

    def request_rejoin(self, reason: str) -> None:
        self.rejoin_needed = True
        self.rejoin_reason = reason

    def _assignor(self, name: str | None) -> ConsumerPartitionAssignor:
        for assignor in self.assignors:
            if assignor.name == name:
                return assignor
        raise IllegalStateError(f"the coordinator chose assignor {name!r}, which we do not have")

    def _reset_generation(self, reason: str, *, reset_member_id: bool) -> None:
        member_id = "" if reset_member_id else self.generation.member_id
        self.generation = Generation(NO_GENERATION, member_id, None)
        self.state = MemberState.UNJOINED
        self.is_leader = False
        self._needs_join_prepare = True
        self.request_rejoin(reason)

    # --- joining ------------------------------------------------------------------------

    def start_join(self, now_ms: int) -> list[Action]:
        """Begin (or retry) a rebalance: the onJoinPrepare work, then a JoinGroup."""
        if not self.subscription.has_auto_assigned_partitions:
            raise IllegalStateError("group membership needs a topic or pattern subscription")
        actions: list[Action] = []
        if self._needs_join_prepare:
            actions += self._on_join_prepare()
            self._needs_join_prepare = False
        self.state = MemberState.PREPARING_REBALANCE
        self.is_leader = False
        self._assignment_snapshot = None
        self._joined_topics = self.subscription.subscription
        actions.append(SendJoinGroup())
        return actions

    def on_metadata_update(
        self,
        partition_counts: dict[str, int],
        internal_topics: frozenset[str] | set[str] = frozenset(),
    ) -> bool:
        """Check a new metadata snapshot (topic → partition count) against the group.

        A rejoin is requested when a pattern subscription now matches other topics, when
        the subscription changed since the last join, or (leader only, as Java) when a
        topic the group subscribes to gained or lost partitions since the assignment.
        Returns whether a rejoin is needed.
        """
        if self.subscription.pattern is not None and self.subscription.subscribe_from_pattern(
            partition_counts, internal_topics
        ):
            self.request_rejoin("the topics matching the subscription pattern changed")
        if (
            self.state is MemberState.STABLE
            and self.subscription.subscription != self._joined_topics
        ):
            self.request_rejoin("the subscription changed")
        elif self.is_leader and self._assignment_snapshot is not None:
            current = self._snapshot(partition_counts)
            if current != self._assignment_snapshot:
                self.request_rejoin("the partitions of subscribed topics changed")
        return self.rejoin_needed

    def _snapshot(self, partition_counts: dict[str, int]) -> dict[str, int]:
        topics = self.subscription.group_subscription
        return {t: n for t, n in partition_counts.items() if t in topics}

    def _on_join_prepare(self) -> list[Action]:
        actions: list[Action] = []
        owned = _sorted(self.subscription.owned_partitions())
        lost = self.generation.generation_id == NO_GENERATION or not self.generation.member_id
        if self.enable_auto_commit and not lost:
            offsets = self.subscription.all_consumed()
            if offsets:
                actions.append(CommitOffsets(offsets))
        if lost:
            dropped = owned
            callback = ListenerCallback.LOST
        elif self.protocol is RebalanceProtocol.EAGER:
            dropped = owned
            callback = ListenerCallback.REVOKED
        else:
            topics = self.subscription.subscription
            dropped = tuple(tp for tp in owned if tp.topic not in topics)
            callback = ListenerCallback.REVOKED
        if dropped:
            self.subscription.mark_pending_revocation(dropped)
            actions += [InvokeListener(callback, dropped), ReleasePartitions(dropped)]
        self.subscription.reset_group_subscription()
        return actions

    def release(self, partitions: Sequence[TopicPartition]) -> None:
        """Drop partitions whose revocation (or loss) listener has run."""
        self.subscription.remove_assigned(partitions)

    def join_group_request(self, now_ms: int) -> JoinGroupRequest:
        """The JoinGroup to send now: one protocol per assignor, in preference order."""
        if self.state is not MemberState.PREPARING_REBALANCE:
            raise IllegalStateError(f"cannot send JoinGroup in state {self.state.name}")
        topics = self.subscription.subscription
        owned = self.subscription.owned_partitions()
        protocols = []
        for assignor in self.assignors:
            metadata = Subscription(
                topics=topics,
                user_data=assignor.subscription_user_data(topics),
                owned_partitions=owned,
                generation_id=self.generation.generation_id,
                rack_id=self.client_rack,
            )
            protocols.append(
                JoinGroupRequest.JoinGroupRequestProtocol(
                    name=assignor.name, metadata=encode_subscription(metadata)
                )
            )
        return JoinGroupRequest(
            group_id=self.group_id,
            session_timeout_ms=self.session_timeout_ms,
            rebalance_timeout_ms=self.rebalance_timeout_ms,
            member_id=self.generation.member_id,
            group_instance_id=self.group_instance_id,
            protocol_type=PROTOCOL_TYPE,
            protocols=protocols,
            reason=self.rejoin_reason,
        )

    @property
    def join_request_timeout_ms(self) -> int:
        """The coordinator holds a JoinGroup up to the rebalance timeout; allow a margin."""
        return self.rebalance_timeout_ms + 5_000

    def on_join_response(self, response: JoinGroupResponse, now_ms: int) -> list[Action]:
        if self.state is not MemberState.PREPARING_REBALANCE:
            return []  # we left (or were reset) while the request was out
        error = for_code(response.error_code) if response.error_code else None
        if error is None:
            return self._joined(response, now_ms)
        if error is MemberIdRequired:
            # KIP-394: the coordinator assigned us an id; join again with it at once
            self.generation = Generation(NO_GENERATION, response.member_id, None)
            return [SendJoinGroup()]
        if error is UnknownMemberIdError:
            self._reset_generation("unknown member id in JoinGroup", reset_member_id=True)
            return [Rejoin(self.rejoin_reason)]
        if error is IllegalGenerationError:
            self._reset_generation("illegal generation in JoinGroup", reset_member_id=False)
            return [Rejoin(self.rejoin_reason)]
        if error in (GroupLoadInProgressError, RebalanceInProgressError):
            self.request_rejoin(f"JoinGroup: {error.__name__}")
            return [Rejoin(self.rejoin_reason, self.retry_backoff_ms)]
        if error in _COORDINATOR_GONE:
            self.request_rejoin(f"JoinGroup: {error.__name__}")
            return [FindCoordinator(f"JoinGroup: {error.__name__}"), Rejoin(self.rejoin_reason)]
        self._fatal()
        raise self._error_instance(error)

    def _joined(self, response: JoinGroupResponse, now_ms: int) -> list[Action]:
        if response.protocol_type is not None and response.protocol_type != PROTOCOL_TYPE:
            self._fatal()
            raise InconsistentGroupProtocolError(
                f"the group's protocol type is {response.protocol_type!r}, not {PROTOCOL_TYPE!r}"
            )
        self._assignor(response.protocol_name)  # fail now rather than at the sync
        self.generation = Generation(
            response.generation_id, response.member_id, response.protocol_name
        )
        self.state = MemberState.COMPLETING_REBALANCE
        self.timers.reset_timeouts(now_ms)
        self.is_leader = response.leader == response.member_id
        if self.is_leader and not response.skip_assignment:
            self._member_subscriptions = {
                m.member_id: decode_subscription(m.metadata, m.group_instance_id)
                for m in response.members
            }
            topics: set[str] = set()
            for sub in self._member_subscriptions.values():
                topics.update(sub.topics)
            self.subscription.set_group_subscription(topics)
            return [RunAssignment(frozenset(topics))]
        # a follower, or a static leader told to keep the current assignment (KIP-814)
        return [SendSyncGroup(self._sync_request({}))]

    def assign(self, cluster_partitions: ClusterPartitions, now_ms: int) -> list[Action]:
        """Leader: run the chosen assignor over the members' subscriptions."""
        if self.state is not MemberState.COMPLETING_REBALANCE or not self.is_leader:
            return []
        assignor = self._assignor(self.generation.protocol_name)
        subscriptions = self._member_subscriptions
        assignments = assignor.assign(cluster_partitions, subscriptions)
        self._assignment_snapshot = self._snapshot(
            {t: _count(p) for t, p in cluster_partitions.items()}
        )
        missing = sorted(set(subscriptions) - set(assignments))
        if missing:
            raise IllegalStateError(f"assignor {assignor.name!r} left out members {missing}")
        if self.protocol is RebalanceProtocol.COOPERATIVE and not isinstance(
            assignor, CooperativeStickyAssignor
        ):
            validate_cooperative_assignment(subscriptions, assignments)
        encoded = {member: encode_assignment(a) for member, a in assignments.items()}
        return [SendSyncGroup(self._sync_request(encoded))]

    def _sync_request(self, assignments: dict[str, bytes]) -> SyncGroupRequest:
        return SyncGroupRequest(
            group_id=self.group_id,
            generation_id=self.generation.generation_id,
            member_id=self.generation.member_id,
            group_instance_id=self.group_instance_id,
            protocol_type=PROTOCOL_TYPE,
            protocol_name=self.generation.protocol_name,
            assignments=[
                SyncGroupRequest.SyncGroupRequestAssignment(member_id=m, assignment=a)
                for m, a in sorted(assignments.items())
            ],
        )

    def on_sync_response(self, response: SyncGroupResponse, now_ms: int) -> list[Action]:
        if self.state is not MemberState.COMPLETING_REBALANCE:
            return []
        error = for_code(response.error_code) if response.error_code else None
        if error is None:
            return self._on_join_complete(response, now_ms)
        if error is RebalanceInProgressError:
            self.state = MemberState.UNJOINED
            self.request_rejoin("SyncGroup: rebalance in progress")
            return [Rejoin(self.rejoin_reason)]
        if error is UnknownMemberIdError:
            self._reset_generation("unknown member id in SyncGroup", reset_member_id=True)
            return [Rejoin(self.rejoin_reason)]
        if error is IllegalGenerationError:
            self._reset_generation("illegal generation in SyncGroup", reset_member_id=False)
            return [Rejoin(self.rejoin_reason)]
        if error in _COORDINATOR_GONE:
            self.state = MemberState.UNJOINED
            self.request_rejoin(f"SyncGroup: {error.__name__}")
            return [FindCoordinator(f"SyncGroup: {error.__name__}"), Rejoin(self.rejoin_reason)]
        self._fatal()
        raise self._error_instance(error)

    def _on_join_complete(self, response: SyncGroupResponse, now_ms: int) -> list[Action]:
        for field_name, expected in (
            ("protocol_type", PROTOCOL_TYPE),
            ("protocol_name", self.generation.protocol_name),
        ):
            got = getattr(response, field_name)
            if got is not None and got != expected:
                self._fatal()
                raise InconsistentGroupProtocolError(
                    f"SyncGroup answered {field_name} {got!r}, the join said {expected!r}"
                )
        assignment = decode_assignment(response.assignment)
        self.state = MemberState.STABLE
        self.rejoin_needed = False
        self._needs_join_prepare = True
        self._member_subscriptions = {}
        self.timers.reset_timeouts(now_ms)
        assigned = set(assignment.partitions)
        topics = self.subscription.subscription
        if any(tp.topic not in topics for tp in assigned):
            # the subscription changed while we joined: this assignment is for the old one
            self.request_rejoin("assignment does not match the subscription")
            return [Rejoin(self.rejoin_reason)]
        owned = set(self.subscription.owned_partitions())
        added = _sorted(assigned - owned)
        revoked = _sorted(owned - assigned)
        actions: list[Action] = []
        if self.protocol is RebalanceProtocol.COOPERATIVE and revoked:
            # phase one of KIP-429: give these up, then rejoin so their new owners get them
            self.subscription.mark_pending_revocation(revoked)
            actions += [
                InvokeListener(ListenerCallback.REVOKED, revoked),
                ReleasePartitions(revoked),
            ]
        self._assignor(self.generation.protocol_name).on_assignment(
            assignment, self.generation.generation_id
        )
        if self.protocol is RebalanceProtocol.EAGER:
            self.subscription.assign_from_subscribed(assignment.partitions)
        else:
            self.subscription.add_assigned(added)
        actions.append(InvokeListener(ListenerCallback.ASSIGNED, added))
        if self.protocol is RebalanceProtocol.COOPERATIVE and revoked:
            self.request_rejoin("need to revoke partitions and re-join")
            actions.append(Rejoin(self.rejoin_reason))
        return actions

    # --- heartbeats and timers ----------------------------------------------------------

    @property
    def in_group(self) -> bool:
        """Heartbeats run from the join's answer until we leave or are reset."""
        return self.state in (MemberState.COMPLETING_REBALANCE, MemberState.STABLE)

    def record_poll(self, now_ms: int) -> None:
        """The application polled (getone/getmany): the poll timer restarts."""
        self.timers.polled(now_ms)

    def heartbeat_request(self, now_ms: int) -> HeartbeatRequest | None:
        """A heartbeat if one is due now, else ``None``."""
        if not self.in_group or not self.timers.heartbeat_due(now_ms):
            return None
        self.timers.sent(now_ms)
        return HeartbeatRequest(
            group_id=self.group_id,
            generation_id=self.generation.generation_id,
            member_id=self.generation.member_id,
            group_instance_id=self.group_instance_id,
        )

    def on_heartbeat_response(
        self, response: HeartbeatResponse, now_ms: int, sent_generation: int | None = None
    ) -> list[Action]:
        """``sent_generation``: the generation the heartbeat carried; an error about an
        older generation than ours is stale (we rejoined meanwhile) and ignored."""
        error = for_code(response.error_code) if response.error_code else None
        if error is None:
            self.timers.received(now_ms)
            return []
        if error is RebalanceInProgressError:
            self.timers.received(now_ms)  # the coordinator is alive and knows us
            if self.state is MemberState.STABLE:
                self.request_rejoin("group is rebalancing")
                self.state = MemberState.UNJOINED
                return [Rejoin(self.rejoin_reason)]
            return []  # already rebalancing: the SyncGroup answer will settle it
        stale = sent_generation is not None and sent_generation != self.generation.generation_id
        if error in (IllegalGenerationError, UnknownMemberIdError, FencedInstanceIdError):
            self.timers.failed(now_ms)
            if stale or not self.in_group:
                return []
            if error is FencedInstanceIdError:
                self._fatal()
                raise FencedInstanceIdError(
                    f"another consumer with group_instance_id {self.group_instance_id!r} "
                    "joined the group"
                )
            self._reset_generation(
                f"heartbeat: {error.__name__}", reset_member_id=error is UnknownMemberIdError
            )
            return [Rejoin(self.rejoin_reason)]
        if error in _COORDINATOR_GONE:
            self.timers.failed(now_ms)
            return [FindCoordinator(f"heartbeat: {error.__name__}")]
        self.timers.failed(now_ms)
        self._fatal()
        raise self._error_instance(error)

    def on_heartbeat_failure(self, now_ms: int) -> list[Action]:
        """The heartbeat got no answer (connection lost, timed out)."""
        self.timers.failed(now_ms)
        return [FindCoordinator("heartbeat failed")]

    def check_timers(self, now_ms: int) -> list[Action]:
        """Session and poll deadlines (call at :meth:`next_deadline`)."""
        if not self.in_group:
            return []
        if self.timers.poll_expired(now_ms):
            # Java's rule: a member that stopped polling leaves at once so its partitions
            # move on, rather than holding them until the session times out
            return self.leave_group("consumer poll timeout has expired", now_ms)
        if self.timers.session_expired(now_ms):
            self.timers.received(now_ms)  # restart the clock for the new coordinator
            return [FindCoordinator("no heartbeat answer within the session timeout")]
        return []

    def next_deadline(self, now_ms: int) -> int | None:
        return self.timers.next_deadline(now_ms) if self.in_group else None

    # --- leaving ----------------------------------------------------------------------

    def leave_group(self, reason: str, now_ms: int) -> list[Action]:
        """Leave the group (poll timeout, unsubscribe).  Static members send nothing
        (KIP-345: the coordinator keeps their place until the session expires)."""
        actions: list[Action] = []
        if (
            not self.is_static
            and self.generation.member_id
            and self.state is not MemberState.UNJOINED
        ):
            actions.append(self.leave_group_action(reason))
        self._reset_generation(reason, reset_member_id=True)
        return actions

    def close(self, now_ms: int, *, invoke_listener: bool = True) -> list[Action]:
        """Stop: the last auto-commit, the listener for what we own, then LeaveGroup
        (dynamic members only)."""
        actions: list[Action] = []
        owned = _sorted(self.subscription.owned_partitions())
        healthy = self.state is MemberState.STABLE and self.generation.generation_id >= 0
        if self.enable_auto_commit and healthy:
            offsets = self.subscription.all_consumed()
            if offsets:
                actions.append(CommitOffsets(offsets, "auto-commit on close"))
        if owned and invoke_listener and self.subscription.has_auto_assigned_partitions:
            callback = ListenerCallback.REVOKED if healthy else ListenerCallback.LOST
            self.subscription.mark_pending_revocation(owned)
            actions += [InvokeListener(callback, owned), ReleasePartitions(owned)]
        actions += self.leave_group("the consumer is being closed", now_ms)
        self.rejoin_needed = False
        return actions

    def leave_group_action(self, reason: str) -> SendLeaveGroup:
        return SendLeaveGroup(
            self.group_id, self.generation.member_id, self.group_instance_id, reason
        )

    # --- commits ------------------------------------------------------------------------

    def commit_request(
        self,
        offsets: dict[TopicPartition, OffsetAndMetadata],
        leader_epochs: dict[TopicPartition, int] | None = None,
    ) -> OffsetCommitRequest:
        """An OffsetCommit carrying our identity (none without group management)."""
        managed = self.subscription.has_auto_assigned_partitions
        return offset_commit_request(
            self.group_id,
            offsets,
            generation_id=self.generation.generation_id if managed else NO_GENERATION,
            member_id=self.generation.member_id if managed else "",
            group_instance_id=self.group_instance_id if managed else None,
            leader_epochs=leader_epochs,
        )

    def on_commit_response(self, response: OffsetCommitResponse, now_ms: int) -> CommitOutcome:
        """Classify the answer and apply what it means for membership."""
        outcome = classify_commit_response(response, self.group_id)
        if outcome.reset is GenerationReset.GENERATION:
            self._reset_generation("commit: illegal generation", reset_member_id=False)
        elif outcome.reset is GenerationReset.MEMBER:
            self._reset_generation("commit: unknown member id", reset_member_id=True)
        elif outcome.rejoin:
            self.request_rejoin("commit: rebalance in progress")
        error = outcome.error
        if isinstance(error, FencedInstanceIdError):
            self._fatal()
            raise error
        return outcome

    # --- errors -----------------------------------------------------------------------

    def _fatal(self) -> None:
        self.state = MemberState.UNJOINED
        self.rejoin_needed = False

    def _error_instance(self, error: type[KafkaError]) -> KafkaError:
        if error is GroupAuthorizationFailedError:
            return error(self.group_id)
        if error is FencedInstanceIdError:
            return error(
                f"another consumer with group_instance_id {self.group_instance_id!r} "
                "joined the group"
            )
        return error()


def _count(partitions: int | Iterable[int]) -> int:
    return partitions if isinstance(partitions, int) else len(set(partitions))


def validate_cooperative_assignment(
    subscriptions: dict[str, Subscription], assignments: dict[str, Assignment]
) -> None:
    """A cooperative assignor may not hand a partition straight from one owner to another:
    its owner must revoke it first (and the next rebalance hands it over).  Java runs this
    check on assignors it did not write."""
    added: set[TopicPartition] = set()
    revoked: set[TopicPartition] = set()
    for member, sub in subscriptions.items():
        owned = set(sub.owned_partitions)
        assigned = set(assignments.get(member, Assignment()).partitions)
        added |= assigned - owned
        revoked |= owned - assigned
    moved = sorted(added & revoked)
    if moved:
        raise IllegalStateError(
            f"the cooperative assignor reassigned partitions still owned by other members: {moved}"
        )
