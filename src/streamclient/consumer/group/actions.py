"""What the group membership state machine asks its async shell to do, in order.

See :mod:`streamclient.consumer.group.membership` for when each is emitted and how the
coordinator loop executes it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from streamclient.protocol.messages.leave_group import LeaveGroupRequest
from streamclient.protocol.messages.sync_group import SyncGroupRequest
from streamclient.structs import OffsetAndMetadata, TopicPartition

__all__ = [
    "Action",
    "CommitOffsets",
    "FindCoordinator",
    "InvokeListener",
    "ListenerCallback",
    "Rejoin",
    "ReleasePartitions",
    "RunAssignment",
    "SendJoinGroup",
    "SendLeaveGroup",
    "SendSyncGroup",
]


class ListenerCallback(enum.Enum):
    REVOKED = "on_partitions_revoked"
    ASSIGNED = "on_partitions_assigned"
    LOST = "on_partitions_lost"


@dataclass(frozen=True, slots=True)
class CommitOffsets:
    offsets: dict[TopicPartition, OffsetAndMetadata]
    reason: str = "auto-commit before revocation"


@dataclass(frozen=True, slots=True)
class InvokeListener:
    callback: ListenerCallback
    partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class ReleasePartitions:
    partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class SendJoinGroup:
    pass


@dataclass(frozen=True, slots=True)
class RunAssignment:
    topics: frozenset[str]


@dataclass(frozen=True, slots=True)
class SendSyncGroup:
    request: SyncGroupRequest


@dataclass(frozen=True, slots=True)
class SendLeaveGroup:
    """Send LeaveGroup; its layout depends on the version (:meth:`request`)."""

    group_id: str
    member_id: str
    group_instance_id: str | None
    reason: str

    def request(self, version: int) -> LeaveGroupRequest:
        """v0-v2 name the member at the top level, v3+ in a members array (KIP-345)."""
        if version < 3:
            return LeaveGroupRequest(group_id=self.group_id, member_id=self.member_id)
        return LeaveGroupRequest(
            group_id=self.group_id,
            members=[
                LeaveGroupRequest.MemberIdentity(
                    member_id=self.member_id,
                    group_instance_id=self.group_instance_id,
                    reason=self.reason,
                )
            ],
        )


@dataclass(frozen=True, slots=True)
class Rejoin:
    reason: str
    delay_ms: int = 0


@dataclass(frozen=True, slots=True)
class FindCoordinator:
    reason: str


Action = (
    CommitOffsets
    | InvokeListener
    | ReleasePartitions
    | SendJoinGroup
    | RunAssignment
    | SendSyncGroup
    | SendLeaveGroup
    | Rejoin
    | FindCoordinator
)
