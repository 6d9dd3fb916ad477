"""The classic consumer-group membership state machine, sans-IO.

One :class:`Group` per group id. Every input carries ``now_ms``; nothing here sleeps, reads a
clock or awaits. JoinGroup and SyncGroup requests often cannot be answered at once (a rebalance
waits for every member), so the caller hands each of them a *token* (an int it chose) and every
method returns the :data:`Completion` list of ``(token, result)`` pairs that are now decided —
possibly including the caller's own token, possibly answers to requests parked earlier. The async
layer (``coordinator.py``) parks a request on an event until its token shows up.

The rules follow Kafka's classic group coordinator (states Empty, PreparingRebalance,
CompletingRebalance, Stable, Dead; KIP-345 static membership; KIP-394 MEMBER_ID_REQUIRED;
KIP-814 skip_assignment for a static leader rejoining a stable group).
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from streamclient.broker.groups.error_code import Code

__all__ = [
    "Completion",
    "Group",
    "GroupConfig",
    "GroupState",
    "JoinParams",
    "JoinResult",
    "JoinedMember",
    "Member",
    "SyncResult",
]


class GroupState(str, Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True)
class GroupConfig:
    """Broker settings for groups.

    ``initial_rebalance_delay_ms`` is Kafka's ``group.initial.rebalance.delay.ms``. Kafka
    defaults to 3000 ms to let a fleet of consumers starting together land in one rebalance;
    an embedded test broker wants rebalances fast, so we default to 100 ms.
    ``min_session_timeout_ms`` defaults below Kafka's 6000 ms so tests can use short sessions.
    """

    initial_rebalance_delay_ms: int = 100
    min_session_timeout_ms: int = 100
    max_session_timeout_ms: int = 1_800_000
    max_size: int | None = None


@dataclass(frozen=True)
class JoinParams:
    """One JoinGroup request, version-independent."""

    member_id: str
    client_id: str
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    group_instance_id: str | None = None
    client_host: str = ""
    # JoinGroup v4+ (KIP-394): a new dynamic member must rejoin with the id we hand it
    require_known_member_id: bool = True


@dataclass(frozen=True)
class JoinedMember:
    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True)
class JoinResult:
    error: Code
    member_id: str = ""
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    members: list[JoinedMember] = field(default_factory=list)
    skip_assignment: bool = False


@dataclass(frozen=True)
class SyncResult:
    error: Code
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


Completion = tuple[int, "JoinResult | SyncResult"]


@dataclass
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    last_heartbeat_ms: int
    assignment: bytes = b""
    join_token: int | None = None
    sync_token: int | None = None

    def metadata(self, protocol_name: str | None) -> bytes:
        for name, meta in self.protocols:
            if name == protocol_name:
                return meta
        return b""

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]


class Group:
    def __init__(self, group_id: str, config: GroupConfig | None = None, now_ms: int = 0) -> None:
        self.group_id = group_id
        self.config = config or GroupConfig()
        self.state = GroupState.EMPTY
        self.state_timestamp_ms = now_ms
        self.generation_id = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        # KIP-394: ids handed out with MEMBER_ID_REQUIRED, by expiry deadline
        self.pending_members: dict[str, int] = {}
        self.static_members: dict[str, str] = {}
        # bumped whenever what ``GroupMetadataValue`` records changes, so the owner persists it
        self.metadata_version = 0
        self._rebalance_deadline_ms: int | None = None
        self._rebalance_limit_ms: int | None = None
        self._in_initial_delay = False
        self._new_member_added = False
        self._sync_deadline_ms: int | None = None
        self._out: list[Completion] = []

    # --- queries ------------------------------------------------------------------------

    def is_empty(self) -> bool:
        return not self.members

    def has_member(self, member_id: str) -> bool:
        return member_id in self.members

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def next_deadline_ms(self) -> int | None:
        """The earliest time at which :meth:`tick` has something to do."""
        times: list[int] = list(self.pending_members.values())
        if self._rebalance_deadline_ms is not None:
            times.append(self._rebalance_deadline_ms)
        if self._sync_deadline_ms is not None:
            times.append(self._sync_deadline_ms)
        for m in self.members.values():
            if m.join_token is None and m.sync_token is None:
                times.append(m.last_heartbeat_ms + m.session_timeout_ms)
        return min(times, default=None)

    # --- JoinGroup ----------------------------------------------------------------------

    def join(self, token: int, now_ms: int, params: JoinParams) -> list[Completion]:
        error = self._validate_join(params)
        if error is not Code.NONE:
            self._reply(token, JoinResult(error, member_id=params.member_id))
        elif not params.member_id:
            self._join_new_member(token, now_ms, params)
        else:
            self._join_known_member(token, now_ms, params)
        return self._drain()

    def _validate_join(self, p: JoinParams) -> Code:
        if self.state is GroupState.DEAD:
            return Code.COORDINATOR_NOT_AVAILABLE
        cfg = self.config
        if not cfg.min_session_timeout_ms <= p.session_timeout_ms <= cfg.max_session_timeout_ms:
            return Code.INVALID_SESSION_TIMEOUT
        if not p.protocol_type or not p.protocols:
            return Code.INCONSISTENT_GROUP_PROTOCOL
        if self.members and not self._supports(p.protocol_type, p.protocols):
            return Code.INCONSISTENT_GROUP_PROTOCOL
        if (
            cfg.max_size is not None
            and not p.member_id
            and len(self.members) + len(self.pending_members) >= cfg.max_size
            and (p.group_instance_id is None or p.group_instance_id not in self.static_members)
        ):
            return Code.GROUP_MAX_SIZE_REACHED
        return Code.NONE

    def _supports(self, protocol_type: str, protocols: list[tuple[str, bytes]]) -> bool:
        if protocol_type != self.protocol_type:
            return False
        common = self._common_protocols()
        return any(name in common for name, _ in protocols)

    def _common_protocols(self) -> set[str]:
        members = list(self.members.values())
        if not members:
            return set()
        common = set(members[0].protocol_names())
        for m in members[1:]:
            common &= set(m.protocol_names())
        return common

    def _join_new_member(self, token: int, now_ms: int, p: JoinParams) -> None:
        new_id = f"{p.client_id}-{uuid.uuid4()}"
        if p.group_instance_id is not None:
            old_id = self.static_members.get(p.group_instance_id)
            if old_id is not None:
                self._replace_static_member(token, now_ms, old_id, new_id, p)
            else:
                # static members skip the MEMBER_ID_REQUIRED round trip (KIP-345)
                self._add_member_and_rebalance(token, now_ms, new_id, p)
        elif p.require_known_member_id:
            self.pending_members[new_id] = now_ms + p.session_timeout_ms
            self._reply(token, JoinResult(Code.MEMBER_ID_REQUIRED, member_id=new_id))
        else:
            self._add_member_and_rebalance(token, now_ms, new_id, p)

    def _join_known_member(self, token: int, now_ms: int, p: JoinParams) -> None:
        if p.member_id in self.pending_members and p.group_instance_id is None:
            del self.pending_members[p.member_id]
            self._add_member_and_rebalance(token, now_ms, p.member_id, p)
            return
        error = self._validate_member(p.member_id, p.group_instance_id)
        if error is Code.NONE and self.state is GroupState.EMPTY:
            error = Code.UNKNOWN_MEMBER_ID
        if error is not Code.NONE:
            self._reply(token, JoinResult(error, member_id=p.member_id))
            return
        member = self.members[p.member_id]
        unchanged = member.protocols == p.protocols and member.protocol_type == p.protocol_type
        if self.state is GroupState.PREPARING_REBALANCE:
            self._update_member(member, token, now_ms, p)
            self._try_complete_join(now_ms)
        elif self.state is GroupState.COMPLETING_REBALANCE:
            if unchanged:
                # a retried join of this generation: answer with what it already got
                self._reply(token, self._join_result_for(member))
            else:
                self._update_member(member, token, now_ms, p)
                self._prepare_rebalance(now_ms)
        elif self.state is GroupState.STABLE:
            if member.member_id == self.leader_id or not unchanged:
                # the leader rejoins to pick up metadata changes; give it a new generation
                self._update_member(member, token, now_ms, p)
                self._prepare_rebalance(now_ms)
            else:
                member.last_heartbeat_ms = now_ms
                self._reply(token, self._join_result_for(member))

    def _update_member(self, member: Member, token: int, now_ms: int, p: JoinParams) -> None:
        if member.join_token is not None and member.join_token != token:
            # Kafka drops the superseded callback; we answer it so its waiter is released
            self._reply(member.join_token, JoinResult(Code.REBALANCE_IN_PROGRESS, member.member_id))
        member.protocols = list(p.protocols)
        member.protocol_type = p.protocol_type
        member.session_timeout_ms = p.session_timeout_ms
        member.rebalance_timeout_ms = p.rebalance_timeout_ms
        member.client_id = p.client_id
        member.client_host = p.client_host
        member.join_token = token
        member.last_heartbeat_ms = now_ms

    def _add_member_and_rebalance(
        self, token: int, now_ms: int, member_id: str, p: JoinParams
    ) -> None:
        member = Member(
            member_id=member_id,
            group_instance_id=p.group_instance_id,
            client_id=p.client_id,
            client_host=p.client_host,
            session_timeout_ms=p.session_timeout_ms,
            rebalance_timeout_ms=p.rebalance_timeout_ms,
            protocol_type=p.protocol_type,
            protocols=list(p.protocols),
            last_heartbeat_ms=now_ms,
            join_token=token,
        )
        if not self.members:
            self.protocol_type = p.protocol_type
        self.members[member_id] = member
        if p.group_instance_id is not None:
            self.static_members[p.group_instance_id] = member_id
        if self.leader_id is None:
            self.leader_id = member_id
        self._new_member_added = True
        self._maybe_prepare_rebalance(now_ms)

    def _replace_static_member(
        self, token: int, now_ms: int, old_id: str, new_id: str, p: JoinParams
    ) -> None:
        old = self.members[old_id]
        # the old incarnation is a zombie now (KIP-345): answer what it has parked with fencing
        if old.join_token is not None:
            self._reply(old.join_token, JoinResult(Code.FENCED_INSTANCE_ID, member_id=old_id))
            old.join_token = None
        if old.sync_token is not None:
            self._reply(old.sync_token, SyncResult(Code.FENCED_INSTANCE_ID))
            old.sync_token = None
        unchanged = old.protocols == p.protocols and old.protocol_type == p.protocol_type
        old.member_id = new_id
        self.members = {(new_id if k == old_id else k): v for k, v in self.members.items()}
        assert p.group_instance_id is not None
        self.static_members[p.group_instance_id] = new_id
        if self.leader_id == old_id:
            self.leader_id = new_id
        self.metadata_version += 1
        if self.state is GroupState.STABLE and unchanged:
            old.client_id, old.client_host = p.client_id, p.client_host
            old.session_timeout_ms = p.session_timeout_ms
            old.rebalance_timeout_ms = p.rebalance_timeout_ms
            old.last_heartbeat_ms = now_ms
            is_leader = self.leader_id == new_id
            result = self._join_result_for(old)
            if is_leader:
                # KIP-814: the leader must not compute a new assignment; SyncGroup in Stable
                # hands back the one it has
                result = JoinResult(
                    Code.NONE, new_id, result.generation_id, result.protocol_type,
                    result.protocol_name, result.leader, result.members, skip_assignment=True,
                )
            self._reply(token, result)
            return
        self._update_member(old, token, now_ms, p)
        self._maybe_prepare_rebalance(now_ms)

    def _join_result_for(self, member: Member) -> JoinResult:
        is_leader = member.member_id == self.leader_id
        members = self._joined_members() if is_leader else []
        return JoinResult(
            Code.NONE,
            member_id=member.member_id,
            generation_id=self.generation_id,
            protocol_type=self.protocol_type,
            protocol_name=self.protocol_name,
            leader=self.leader_id or "",
            members=members,
        )

    def _joined_members(self) -> list[JoinedMember]:
        return [
            JoinedMember(m.member_id, m.group_instance_id, m.metadata(self.protocol_name))
            for m in self.members.values()
        ]

    # --- rebalancing --------------------------------------------------------------------

    def _maybe_prepare_rebalance(self, now_ms: int) -> None:
        if self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY):
            self._prepare_rebalance(now_ms)
        elif self.state is GroupState.PREPARING_REBALANCE:
            self._try_complete_join(now_ms)

    def _prepare_rebalance(self, now_ms: int) -> None:
        if self.state is GroupState.COMPLETING_REBALANCE:
            for m in self.members.values():
                if m.sync_token is not None:
                    self._reply(m.sync_token, SyncResult(Code.REBALANCE_IN_PROGRESS))
                    m.sync_token = None
        was_empty = self.state is GroupState.EMPTY
        self._set_state(GroupState.PREPARING_REBALANCE, now_ms)
        self._sync_deadline_ms = None
        timeout = self.rebalance_timeout_ms()
        self._rebalance_limit_ms = now_ms + timeout
        delay = self.config.initial_rebalance_delay_ms
        if was_empty and delay > 0:
            # wait for more of a fleet that starts together, as group.initial.rebalance.delay.ms
            self._in_initial_delay = True
            self._new_member_added = False
            self._rebalance_deadline_ms = now_ms + min(delay, timeout)
        else:
            self._in_initial_delay = False
            self._rebalance_deadline_ms = now_ms + timeout
            self._try_complete_join(now_ms)

    def _try_complete_join(self, now_ms: int) -> None:
        if self.state is not GroupState.PREPARING_REBALANCE or self._in_initial_delay:
            return
        if self.pending_members:
            return
        if all(m.join_token is not None for m in self.members.values()):
            self._complete_join(now_ms)

    def _complete_join(self, now_ms: int) -> None:
        for m in list(self.members.values()):
            # static members keep their place until their session expires (KIP-345)
            if m.join_token is None and m.group_instance_id is None:
                self._remove_member(m)
        self._in_initial_delay = False
        self._rebalance_deadline_ms = None
        self._rebalance_limit_ms = None
        self.generation_id += 1
        self.metadata_version += 1
        if not self.members:
            self.protocol_name = None
            self.leader_id = None
            self._set_state(GroupState.EMPTY, now_ms)
            return
        self.protocol_name = self._select_protocol()
        leader = self.members.get(self.leader_id or "")
        if leader is None or leader.join_token is None:
            rejoined = [m for m in self.members.values() if m.join_token is not None]
            self.leader_id = (rejoined or list(self.members.values()))[0].member_id
        self._set_state(GroupState.COMPLETING_REBALANCE, now_ms)
        self._sync_deadline_ms = now_ms + self.rebalance_timeout_ms()
        for m in self.members.values():
            m.assignment = b""
            if m.join_token is not None:
                token, m.join_token = m.join_token, None
                m.last_heartbeat_ms = now_ms
                self._reply(token, self._join_result_for(m))

    def _select_protocol(self) -> str:
        """Kafka's choice: among protocols every member supports, each member votes for the
        first one in its own preference order; the most votes win (ties: the first member's
        preference order)."""
        common = self._common_protocols()
        members = list(self.members.values())
        votes: Counter[str] = Counter()
        for m in members:
            votes[next(name for name in m.protocol_names() if name in common)] += 1
        order = [name for name in members[0].protocol_names() if name in common]
        return max(order, key=lambda name: (votes[name], -order.index(name)))

    def _remove_member(self, member: Member) -> None:
        if member.join_token is not None:
            self._reply(member.join_token, JoinResult(Code.UNKNOWN_MEMBER_ID, member.member_id))
            member.join_token = None
        if member.sync_token is not None:
            self._reply(member.sync_token, SyncResult(Code.UNKNOWN_MEMBER_ID))
            member.sync_token = None
        del self.members[member.member_id]
        instance_id = member.group_instance_id
        if instance_id is not None and self.static_members.get(instance_id) == member.member_id:
            del self.static_members[instance_id]
        if self.leader_id == member.member_id:
            self.leader_id = next(iter(self.members), None)
        self.metadata_version += 1

    def _remove_member_and_update(self, member: Member, now_ms: int) -> None:
        self._remove_member(member)
        if self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._prepare_rebalance(now_ms)
        elif self.state is GroupState.PREPARING_REBALANCE:
            self._try_complete_join(now_ms)

    def _set_state(self, state: GroupState, now_ms: int) -> None:
        self.state = state
        self.state_timestamp_ms = now_ms

    def _validate_member(self, member_id: str, group_instance_id: str | None) -> Code:
        if group_instance_id is not None:
            known = self.static_members.get(group_instance_id)
            if known is not None and known != member_id:
                return Code.FENCED_INSTANCE_ID
        if member_id not in self.members:
            return Code.UNKNOWN_MEMBER_ID
        return Code.NONE

    # --- SyncGroup ----------------------------------------------------------------------

    def sync(
        self,
        token: int,
        now_ms: int,
        *,
        member_id: str,
        generation_id: int,
        assignments: dict[str, bytes],
        group_instance_id: str | None = None,
        protocol_type: str | None = None,
        protocol_name: str | None = None,
    ) -> list[Completion]:
        error = self._validate_sync(member_id, group_instance_id, generation_id)
        if error is Code.NONE and (
            (protocol_type is not None and protocol_type != self.protocol_type)
            or (protocol_name is not None and protocol_name != self.protocol_name)
        ):
            error = Code.INCONSISTENT_GROUP_PROTOCOL
        if error is not Code.NONE:
            self._reply(token, SyncResult(error))
            return self._drain()
        member = self.members[member_id]
        member.last_heartbeat_ms = now_ms
        if self.state is GroupState.STABLE:
            self._reply(token, self._sync_result(member))
            return self._drain()
        # CompletingRebalance: park until the leader's assignment arrives
        if member.sync_token is not None:
            self._reply(member.sync_token, SyncResult(Code.REBALANCE_IN_PROGRESS))
        member.sync_token = token
        if member_id == self.leader_id:
            for mid, m in self.members.items():
                m.assignment = assignments.get(mid, b"")
            self._set_state(GroupState.STABLE, now_ms)
            self._sync_deadline_ms = None
            self.metadata_version += 1
            for m in self.members.values():
                if m.sync_token is not None:
                    token_, m.sync_token = m.sync_token, None
                    self._reply(token_, self._sync_result(m))
        return self._drain()

    def _validate_sync(self, member_id: str, instance_id: str | None, generation_id: int) -> Code:
        if self.state is GroupState.DEAD:
            return Code.COORDINATOR_NOT_AVAILABLE
        error = self._validate_member(member_id, instance_id)
        if error is not Code.NONE:
            return error
        if generation_id != self.generation_id:
            return Code.ILLEGAL_GENERATION
        if self.state is GroupState.EMPTY:
            return Code.UNKNOWN_MEMBER_ID
        if self.state is GroupState.PREPARING_REBALANCE:
            return Code.REBALANCE_IN_PROGRESS
        return Code.NONE

    def _sync_result(self, member: Member) -> SyncResult:
        return SyncResult(Code.NONE, self.protocol_type, self.protocol_name, member.assignment)

    # --- Heartbeat, LeaveGroup ----------------------------------------------------------

    def heartbeat(
        self, now_ms: int, *, member_id: str, generation_id: int,
        group_instance_id: str | None = None,
    ) -> Code:
        if self.state is GroupState.DEAD:
            return Code.COORDINATOR_NOT_AVAILABLE
        error = self._validate_member(member_id, group_instance_id)
        if error is not Code.NONE:
            return error
        if self.state is GroupState.EMPTY:
            return Code.UNKNOWN_MEMBER_ID
        member = self.members[member_id]
        if self.state is GroupState.PREPARING_REBALANCE:
            member.last_heartbeat_ms = now_ms
            return Code.REBALANCE_IN_PROGRESS
        if generation_id != self.generation_id:
            return Code.ILLEGAL_GENERATION
        member.last_heartbeat_ms = now_ms
        return Code.NONE

    def leave(
        self, now_ms: int, members: list[tuple[str, str | None]]
    ) -> tuple[list[Code], list[Completion]]:
        """Remove ``(member_id, group_instance_id)`` pairs (LeaveGroup v3+ batches them).

        A static member may leave by instance id alone (empty member id)."""
        if self.state is GroupState.DEAD:
            return [Code.COORDINATOR_NOT_AVAILABLE] * len(members), []
        errors: list[Code] = []
        for member_id, instance_id in members:
            errors.append(self._leave_one(now_ms, member_id, instance_id))
        return errors, self._drain()

    def _leave_one(self, now_ms: int, member_id: str, instance_id: str | None) -> Code:
        if instance_id is not None:
            known = self.static_members.get(instance_id)
            if known is None:
                return Code.UNKNOWN_MEMBER_ID
            if member_id and member_id != known:
                return Code.FENCED_INSTANCE_ID
            self._remove_member_and_update(self.members[known], now_ms)
            return Code.NONE
        if member_id in self.pending_members:
            del self.pending_members[member_id]
            self._try_complete_join(now_ms)
            return Code.NONE
        member = self.members.get(member_id)
        if member is None:
            return Code.UNKNOWN_MEMBER_ID
        self._remove_member_and_update(member, now_ms)
        return Code.NONE

    # --- offsets ------------------------------------------------------------------------

    def validate_offset_commit(
        self, now_ms: int, *, member_id: str, generation_id: int,
        group_instance_id: str | None = None,
    ) -> Code:
        """The group's side of OffsetCommit; a valid commit counts as a heartbeat."""
        if self.state is GroupState.DEAD:
            return Code.COORDINATOR_NOT_AVAILABLE
        if generation_id >= 0 or member_id or group_instance_id is not None:
            error = self._validate_member(member_id, group_instance_id)
            if error is not Code.NONE:
                return error
            if generation_id != self.generation_id:
                return Code.ILLEGAL_GENERATION
            if self.state is GroupState.COMPLETING_REBALANCE:
                # the member has its new generation but no assignment yet
                return Code.REBALANCE_IN_PROGRESS
            self.members[member_id].last_heartbeat_ms = now_ms
            return Code.NONE
        if self.state is not GroupState.EMPTY:
            # a commit without membership may not overwrite what an active group commits
            return Code.UNKNOWN_MEMBER_ID
        return Code.NONE

    def validate_txn_offset_commit(
        self, *, member_id: str, generation_id: int, group_instance_id: str | None = None
    ) -> Code:
        """TxnOffsetCommit v3+ (KIP-447) checks; older versions send -1 / empty ids."""
        if self.state is GroupState.DEAD:
            return Code.COORDINATOR_NOT_AVAILABLE
        if group_instance_id is not None:
            known = self.static_members.get(group_instance_id)
            if known is not None and known != member_id:
                return Code.FENCED_INSTANCE_ID
        if member_id and member_id not in self.members:
            return Code.UNKNOWN_MEMBER_ID
        if generation_id >= 0 and generation_id != self.generation_id:
            return Code.ILLEGAL_GENERATION
        return Code.NONE

    # --- deletion, timers ---------------------------------------------------------------

    def mark_dead(self, now_ms: int) -> None:
        self._set_state(GroupState.DEAD, now_ms)
        self.pending_members.clear()
        self._rebalance_deadline_ms = self._sync_deadline_ms = None

    def tick(self, now_ms: int) -> list[Completion]:
        """Expire sessions, pending member ids, and rebalance and sync deadlines."""
        if self.state is GroupState.DEAD:
            return self._drain()
        for member_id, deadline in list(self.pending_members.items()):
            if now_ms >= deadline:
                del self.pending_members[member_id]
                self._try_complete_join(now_ms)
        for m in list(self.members.values()):
            if m.member_id not in self.members or m.join_token is not None:
                continue
            if m.sync_token is None and now_ms >= m.last_heartbeat_ms + m.session_timeout_ms:
                self._remove_member_and_update(m, now_ms)
        if (
            self.state is GroupState.PREPARING_REBALANCE
            and self._rebalance_deadline_ms is not None
            and now_ms >= self._rebalance_deadline_ms
        ):
            self._on_rebalance_deadline(now_ms)
        if (
            self.state is GroupState.COMPLETING_REBALANCE
            and self._sync_deadline_ms is not None
            and now_ms >= self._sync_deadline_ms
        ):
            # the leader never sent its assignment: drop who did not sync and start over
            for m in list(self.members.values()):
                if m.sync_token is None:
                    self._remove_member(m)
            self._prepare_rebalance(now_ms)
        return self._drain()

    def _on_rebalance_deadline(self, now_ms: int) -> None:
        if self._in_initial_delay:
            limit = self._rebalance_limit_ms or now_ms
            if self._new_member_added and now_ms < limit:
                # someone joined during the delay: wait one more delay for the rest of the fleet
                self._new_member_added = False
                delay = self.config.initial_rebalance_delay_ms
                self._rebalance_deadline_ms = min(now_ms + delay, limit)
                return
            self._in_initial_delay = False
        self._complete_join(now_ms)

    # --- plumbing -----------------------------------------------------------------------

    def _reply(self, token: int, result: JoinResult | SyncResult) -> None:
        self._out.append((token, result))

    def _drain(self) -> list[Completion]:
        out, self._out = self._out, []
        return out
