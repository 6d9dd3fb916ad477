"""The group coordinator: the async shell around the sans-IO :class:`Group` machines.

One instance serves the whole in-process cluster (``state.groups``); each request names the
node it reached, and a group is served only by the leader of its ``__consumer_offsets``
partition (NOT_COORDINATOR elsewhere). JoinGroup and SyncGroup handlers park on an
``anyio.Event`` per request token until a group decision (another member's request, or
:meth:`GroupCoordinator.tick`) completes them, so this runs on asyncio and trio alike.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import anyio

from streamclient.broker.groups.error_code import Code
from streamclient.broker.groups.group import (
    Completion,
    Group,
    GroupConfig,
    GroupState,
    JoinParams,
    JoinResult,
    Member,
    SyncResult,
)
from streamclient.broker.groups.internal_topic import InternalTopic
from streamclient.broker.groups.offset_records import (
    GroupMetadataKey,
    GroupMetadataValue,
    MemberMetadataValue,
    decode_group_value,
    decode_key,
    decode_offset_value,
    encode_group_key,
    encode_group_value,
    encode_offset_key,
    encode_offset_value,
)
from streamclient.broker.groups.offsets import OffsetAndMetadata, OffsetStore, TopicPartition
from streamclient.broker.log.results import AppendError

__all__ = ["OFFSETS_TOPIC", "GroupCoordinator", "GroupCoordinatorConfig"]

OFFSETS_TOPIC = "__consumer_offsets"


@dataclass(frozen=True)
class GroupCoordinatorConfig:
    group: GroupConfig = field(default_factory=GroupConfig)
    # offsets.topic.num.partitions (Kafka's default, so groups land where Kafka puts them)
    offsets_topic_partitions: int = 50
    # offset.metadata.max.bytes
    max_metadata_bytes: int = 4096

    @classmethod
    def from_broker_config(cls, broker: Any) -> GroupCoordinatorConfig:
        """The settings from the cluster's ``BrokerConfig`` (Kafka's names in snake case)."""
        defaults = GroupConfig()
        return cls(
            group=GroupConfig(
                initial_rebalance_delay_ms=getattr(
                    broker, "group_initial_rebalance_delay_ms",
                    defaults.initial_rebalance_delay_ms,
                ),
                min_session_timeout_ms=getattr(
                    broker, "group_min_session_timeout_ms", defaults.min_session_timeout_ms
                ),
                max_session_timeout_ms=getattr(
                    broker, "group_max_session_timeout_ms", defaults.max_session_timeout_ms
                ),
            ),
            offsets_topic_partitions=getattr(broker, "offsets_topic_num_partitions", 50),
        )


@dataclass
class _Waiter:
    event: anyio.Event
    result: JoinResult | SyncResult | None = None


class GroupCoordinator:
    def __init__(self, state: Any, config: GroupCoordinatorConfig | None = None) -> None:
        self.state = state
        if config is None:
            config = GroupCoordinatorConfig.from_broker_config(getattr(state, "config", None))
        self.config = config
        self.topic = InternalTopic(state, OFFSETS_TOPIC, config.offsets_topic_partitions)
        self.groups: dict[str, Group] = {}
        self.offsets = OffsetStore()
        self._waiters: dict[int, _Waiter] = {}
        self._tokens = itertools.count(1)
        self._persisted_version: dict[str, int] = {}

    # --- placement ------------------------------------------------------------------------

    def coordinator_for(self, group_id: str) -> int | None:
        return self.topic.coordinator_for(group_id)

    def check_coordinator(self, node_id: int, group_id: str) -> Code:
        """NOT_COORDINATOR unless ``node_id`` leads the group's offsets partition."""
        return self.topic.check_coordinator(node_id, group_id)

    def _now(self) -> int:
        return int(self.state.clock.now_ms())

    def _group(self, group_id: str, *, create: bool) -> Group | None:
        group = self.groups.get(group_id)
        if group is None and create:
            group = Group(group_id, self.config.group, self._now())
            self.groups[group_id] = group
        return group

    # --- membership -------------------------------------------------------------------------

    async def join(self, node_id: int, group_id: str, params: JoinParams) -> JoinResult:
        error = self.check_coordinator(node_id, group_id) if group_id else Code.INVALID_GROUP_ID
        if error is Code.NONE and group_id not in self.groups and params.member_id:
            error = Code.UNKNOWN_MEMBER_ID
        if error is not Code.NONE:
            return JoinResult(error, member_id=params.member_id)
        group = self._group(group_id, create=True)
        assert group is not None
        if group.state is GroupState.DEAD:
            # a deleted group id can be reused: start over with a fresh group
            group = Group(group_id, self.config.group, self._now())
            self.groups[group_id] = group
        token, waiter = self._park()
        self._dispatch(group.join(token, self._now(), params))
        self._persist_group(group)
        result = await self._wait(token, waiter)
        assert isinstance(result, JoinResult)
        return result

    async def sync(
        self,
        node_id: int,
        group_id: str,
        *,
        member_id: str,
        generation_id: int,
        assignments: dict[str, bytes],
        group_instance_id: str | None = None,
        protocol_type: str | None = None,
        protocol_name: str | None = None,
    ) -> SyncResult:
        error = self.check_coordinator(node_id, group_id) if group_id else Code.INVALID_GROUP_ID
        group = self.groups.get(group_id)
        if error is Code.NONE and group is None:
            error = Code.UNKNOWN_MEMBER_ID
        if error is not Code.NONE:
            return SyncResult(error)
        assert group is not None
        token, waiter = self._park()
        self._dispatch(
            group.sync(
                token, self._now(), member_id=member_id, generation_id=generation_id,
                assignments=assignments, group_instance_id=group_instance_id,
                protocol_type=protocol_type, protocol_name=protocol_name,
            )
        )
        self._persist_group(group)
        result = await self._wait(token, waiter)
        assert isinstance(result, SyncResult)
        return result

    def heartbeat(
        self, node_id: int, group_id: str, *, member_id: str, generation_id: int,
        group_instance_id: str | None = None,
    ) -> Code:
        error = self.check_coordinator(node_id, group_id)
        if error is not Code.NONE:
            return error
        group = self.groups.get(group_id)
        if group is None:
            return Code.UNKNOWN_MEMBER_ID
        return group.heartbeat(
            self._now(), member_id=member_id, generation_id=generation_id,
            group_instance_id=group_instance_id,
        )

    def leave(
        self, node_id: int, group_id: str, members: list[tuple[str, str | None]]
    ) -> tuple[Code, list[Code]]:
        error = self.check_coordinator(node_id, group_id)
        if error is not Code.NONE:
            return error, [error] * len(members)
        group = self.groups.get(group_id)
        if group is None:
            return Code.NONE, [Code.UNKNOWN_MEMBER_ID] * len(members)
        errors, completions = group.leave(self._now(), members)
        self._dispatch(completions)
        self._persist_group(group)
        return Code.NONE, errors

    def _park(self) -> tuple[int, _Waiter]:
        token = next(self._tokens)
        waiter = _Waiter(anyio.Event())
        self._waiters[token] = waiter
        return token, waiter

    async def _wait(self, token: int, waiter: _Waiter) -> JoinResult | SyncResult:
        try:
            await waiter.event.wait()
        finally:
            # a cancelled handler (client went away) leaves its token in the group; the
            # answer is dropped when it comes, as Kafka drops a dead connection's response
            self._waiters.pop(token, None)
        assert waiter.result is not None
        return waiter.result

    def _dispatch(self, completions: list[Completion]) -> None:
        for token, result in completions:
            waiter = self._waiters.get(token)
            if waiter is not None:
                waiter.result = result
                waiter.event.set()

    def tick(self, now_ms: int) -> None:
        """Expire sessions, pending member ids and rebalance timeouts (called periodically)."""
        for group in list(self.groups.values()):
            self._dispatch(group.tick(now_ms))
            self._persist_group(group)

    # --- queries ----------------------------------------------------------------------------

    def describe(self, node_id: int, group_id: str) -> tuple[Code, Group | None]:
        error = self.check_coordinator(node_id, group_id)
        if error is not Code.NONE:
            return error, None
        group = self.groups.get(group_id)
        if group is not None and group.state is GroupState.DEAD:
            group = None
        return Code.NONE, group

    def list_groups(self, node_id: int) -> list[Group]:
        """Groups this node coordinates, including groups that only hold offsets."""
        for group_id in self.offsets.groups():
            self._group(group_id, create=True)
        return [
            g for g in self.groups.values()
            if g.state is not GroupState.DEAD and self.coordinator_for(g.group_id) == node_id
        ]

    def delete_groups(self, node_id: int, group_ids: list[str]) -> dict[str, Code]:
        results: dict[str, Code] = {}
        for group_id in group_ids:
            error = self.check_coordinator(node_id, group_id)
            group = self.groups.get(group_id)
            if error is not Code.NONE:
                results[group_id] = error
            elif (group is None and not self.offsets.has_offsets(group_id)) or (
                group is not None and group.state is GroupState.DEAD
            ):
                results[group_id] = Code.GROUP_ID_NOT_FOUND
            elif group is not None and group.state is not GroupState.EMPTY:
                results[group_id] = Code.NON_EMPTY_GROUP
            else:
                self._delete_group(group_id)
                results[group_id] = Code.NONE
        return results

    def _delete_group(self, group_id: str) -> None:
        now = self._now()
        removed = self.offsets.delete_group(group_id)
        records: list[tuple[bytes, bytes | None]] = [
            (encode_offset_key(group_id, t, p), None) for t, p in removed
        ]
        records.append((encode_group_key(group_id), None))
        self.topic.append(self.topic.partition_for(group_id), records, now)
        group = self.groups.pop(group_id, None)
        if group is not None:
            group.mark_dead(now)
        self._persisted_version.pop(group_id, None)

    # --- offsets ----------------------------------------------------------------------------

    def commit_offsets(
        self,
        node_id: int,
        group_id: str,
        offsets: dict[TopicPartition, OffsetAndMetadata],
        *,
        member_id: str = "",
        generation_id: int = -1,
        group_instance_id: str | None = None,
    ) -> dict[TopicPartition, Code]:
        error = self.check_coordinator(node_id, group_id) if group_id else Code.INVALID_GROUP_ID
        group = self.groups.get(group_id)
        now = self._now()
        if error is Code.NONE:
            if group is None or group.state is GroupState.DEAD:
                # only a commit outside group management may create a group (Kafka's rule)
                if generation_id >= 0:
                    error = Code.ILLEGAL_GENERATION
                else:
                    group = Group(group_id, self.config.group, now)
                    self.groups[group_id] = group
            if group is not None and error is Code.NONE:
                error = group.validate_offset_commit(
                    now, member_id=member_id, generation_id=generation_id,
                    group_instance_id=group_instance_id,
                )
        if error is not Code.NONE:
            return dict.fromkeys(offsets, error)
        return self._store_offsets(group_id, offsets, now, producer=None)

    def _store_offsets(
        self,
        group_id: str,
        offsets: dict[TopicPartition, OffsetAndMetadata],
        now: int,
        producer: tuple[int, int] | None,
    ) -> dict[TopicPartition, Code]:
        results: dict[TopicPartition, Code] = {}
        accepted: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, om in offsets.items():
            if len(om.metadata.encode()) > self.config.max_metadata_bytes:
                results[tp] = Code.OFFSET_METADATA_TOO_LARGE
            else:
                accepted[tp] = om
                results[tp] = Code.NONE
        records: list[tuple[bytes, bytes | None]] = [
            (encode_offset_key(group_id, t, p), encode_offset_value(om))
            for (t, p), om in accepted.items()
        ]
        try:
            written = self.topic.append(
                self.topic.partition_for(group_id), records, now, producer=producer
            )
        except AppendError as exc:
            # e.g. a transactional commit from a producer whose epoch was fenced
            return dict.fromkeys(offsets, Code(int(exc.error_code)))
        if not written:
            return dict.fromkeys(offsets, Code.COORDINATOR_NOT_AVAILABLE)
        if producer is None:
            self.offsets.commit(group_id, accepted)
        else:
            self.offsets.stage(group_id, producer[0], accepted)
        return results

    def txn_commit_offsets(
        self,
        node_id: int,
        group_id: str,
        producer_id: int,
        producer_epoch: int,
        offsets: dict[TopicPartition, OffsetAndMetadata],
        *,
        member_id: str = "",
        generation_id: int = -1,
        group_instance_id: str | None = None,
    ) -> dict[TopicPartition, Code]:
        error = self.check_coordinator(node_id, group_id) if group_id else Code.INVALID_GROUP_ID
        now = self._now()
        if error is Code.NONE:
            group = self._group(group_id, create=True)
            assert group is not None
            if group.state is GroupState.DEAD:
                group = Group(group_id, self.config.group, now)
                self.groups[group_id] = group
            error = group.validate_txn_offset_commit(
                member_id=member_id, generation_id=generation_id,
                group_instance_id=group_instance_id,
            )
        if error is not Code.NONE:
            return dict.fromkeys(offsets, error)
        return self._store_offsets(group_id, offsets, now, producer=(producer_id, producer_epoch))

    def complete_txn(self, offsets_partition: int, producer_id: int, commit: bool) -> None:
        """A marker for ``producer_id`` reached ``offsets_partition``: apply or drop its
        staged offsets for every group stored there."""
        for group_id in self.offsets.groups_with_pending(producer_id):
            if self.topic.partition_for(group_id) == offsets_partition:
                self.offsets.complete_txn(group_id, producer_id, commit)

    def fetch_offsets(
        self,
        node_id: int,
        group_id: str,
        partitions: list[TopicPartition] | None,
        *,
        require_stable: bool = False,
    ) -> tuple[Code, dict[TopicPartition, tuple[OffsetAndMetadata | None, Code]]]:
        error = self.check_coordinator(node_id, group_id)
        if error is not Code.NONE:
            return error, {}
        fetched = self.offsets.fetch(group_id, partitions)
        result: dict[TopicPartition, tuple[OffsetAndMetadata | None, Code]] = {}
        for tp, om in fetched.items():
            if require_stable and self.offsets.has_pending(group_id, tp):
                result[tp] = (None, Code.UNSTABLE_OFFSET_COMMIT)
            else:
                result[tp] = (om, Code.NONE)
        return Code.NONE, result

    def delete_offsets(
        self, node_id: int, group_id: str, partitions: list[TopicPartition]
    ) -> tuple[Code, dict[TopicPartition, Code]]:
        error = self.check_coordinator(node_id, group_id)
        if error is not Code.NONE:
            return error, {}
        group = self.groups.get(group_id)
        if (group is None or group.state is GroupState.DEAD) and not self.offsets.has_offsets(
            group_id
        ):
            return Code.GROUP_ID_NOT_FOUND, {}
        subscribed: set[str] = set()
        if group is not None and group.state not in (GroupState.EMPTY, GroupState.DEAD):
            if group.protocol_type != "consumer":
                return Code.NON_EMPTY_GROUP, {}
            subscribed = self._subscribed_topics(group)
        results: dict[TopicPartition, Code] = {}
        deletable = []
        for tp in partitions:
            if tp[0] in subscribed:
                results[tp] = Code.GROUP_SUBSCRIBED_TO_TOPIC
            else:
                deletable.append(tp)
                results[tp] = Code.NONE
        removed = self.offsets.delete(group_id, deletable)
        if removed:
            tombstones: list[tuple[bytes, bytes | None]] = [
                (encode_offset_key(group_id, t, p), None) for t, p in removed
            ]
            self.topic.append(self.topic.partition_for(group_id), tombstones, self._now())
        return Code.NONE, results

    @staticmethod
    def _subscribed_topics(group: Group) -> set[str]:
        from streamclient.protocol.messages import ConsumerProtocolSubscription

        topics: set[str] = set()
        for m in group.members.values():
            meta = m.metadata(group.protocol_name)
            if len(meta) < 2:
                continue
            version = int.from_bytes(meta[:2], "big", signed=True)
            try:
                sub = ConsumerProtocolSubscription.decode(meta[2:], version)
            except Exception:  # a member's opaque metadata we cannot read subscribes nothing
                continue
            topics.update(sub.topics)
        return topics

    # --- persistence ------------------------------------------------------------------------

    def _persist_group(self, group: Group) -> None:
        """Write the group's metadata record when membership or generation changed."""
        if self._persisted_version.get(group.group_id) == group.metadata_version:
            return
        if group.state is GroupState.DEAD:
            return
        self._persisted_version[group.group_id] = group.metadata_version
        value = GroupMetadataValue(
            protocol_type=group.protocol_type or "",
            generation=group.generation_id,
            protocol=group.protocol_name,
            leader=group.leader_id,
            current_state_timestamp_ms=group.state_timestamp_ms,
            members=[
                MemberMetadataValue(
                    m.member_id, m.group_instance_id, m.client_id, m.client_host,
                    m.rebalance_timeout_ms, m.session_timeout_ms,
                    m.metadata(group.protocol_name), m.assignment,
                )
                for m in group.members.values()
            ],
        )
        record = (encode_group_key(group.group_id), encode_group_value(value))
        try:
            self.topic.append(self.topic.partition_for(group.group_id), [record], self._now())
        except Exception:  # losing a metadata snapshot only matters after a restart
            self._persisted_version.pop(group.group_id, None)

    def load_from_log(self) -> None:
        """Rebuild committed offsets and groups from ``__consumer_offsets`` (after a restart).

        Restored groups with members come back Stable with fresh session timers, as Kafka
        loads them; staged transactional offsets wait for their markers.
        """
        now = self._now()
        self.offsets = OffsetStore()
        snapshots: dict[str, GroupMetadataValue | None] = {}
        for partition in range(self.topic.num_partitions):
            for batch in self.topic.batches(partition):
                if batch.is_control:
                    commit = _control_is_commit(batch)
                    if commit is not None:
                        self.complete_txn(partition, batch.producer_id, commit)
                    continue
                for record in batch:
                    if record.key is None:
                        continue
                    key = decode_key(record.key)
                    if isinstance(key, GroupMetadataKey):
                        snapshots[key.group] = (
                            None if record.value is None else decode_group_value(record.value)
                        )
                        continue
                    tp = (key.topic, key.partition)
                    if record.value is None:
                        self.offsets.delete(key.group, [tp])
                    elif batch.is_transactional:
                        om = decode_offset_value(record.value)
                        self.offsets.stage(key.group, batch.producer_id, {tp: om})
                    else:
                        self.offsets.commit(key.group, {tp: decode_offset_value(record.value)})
        self.groups = {}
        for group_id, snap in snapshots.items():
            if snap is not None:
                self.groups[group_id] = _restore_group(group_id, snap, self.config.group, now)
                self._persisted_version[group_id] = self.groups[group_id].metadata_version


def _control_is_commit(batch: Any) -> bool | None:
    for record in batch:
        if record.key is not None and len(record.key) >= 4:
            return int.from_bytes(record.key[2:4], "big") == 1
    return None


def _restore_group(group_id: str, snap: GroupMetadataValue, config: GroupConfig, now: int) -> Group:
    group = Group(group_id, config, now)
    group.generation_id = snap.generation
    group.protocol_type = snap.protocol_type or None
    group.protocol_name = snap.protocol
    group.leader_id = snap.leader
    for m in snap.members:
        group.members[m.member_id] = Member(
            member_id=m.member_id,
            group_instance_id=m.group_instance_id,
            client_id=m.client_id,
            client_host=m.client_host,
            session_timeout_ms=m.session_timeout_ms,
            rebalance_timeout_ms=m.rebalance_timeout_ms,
            protocol_type=snap.protocol_type,
            protocols=[(snap.protocol or "", m.subscription)],
            last_heartbeat_ms=now,
            assignment=m.assignment,
        )
        if m.group_instance_id is not None:
            group.static_members[m.group_instance_id] = m.member_id
    group.state = GroupState.STABLE if group.members else GroupState.EMPTY
    return group
