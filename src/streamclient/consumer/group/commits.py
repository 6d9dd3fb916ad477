"""Offset commits: the OffsetCommit request and what its answer means.

The request carries the member's generation, member id and instance id so the coordinator
can refuse a commit from a member that no longer owns the partitions (a consumer without
group management commits with generation -1 and an empty member id, which the coordinator
accepts only while the group has no members).

Classification follows aiokafka (whose ``commit()`` users catch ``CommitFailedError``) and
the Java client:

- ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS → ``CommitFailedError``; the
  first two also reset the generation (the member must rejoin), the last requests a rejoin;
- NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, REQUEST_TIMED_OUT → rediscover, then retry;
- other retriable errors (COORDINATOR_LOAD_IN_PROGRESS, UNKNOWN_TOPIC_OR_PARTITION,
  UNSTABLE_OFFSET_COMMIT, …) → retry after the backoff;
- FENCED_INSTANCE_ID, authorization failures, OFFSET_METADATA_TOO_LARGE,
  INVALID_COMMIT_OFFSET_SIZE and anything else → raised as is.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from streamclient.errors import (
    CommitFailedError,
    GroupAuthorizationFailedError,
    GroupCoordinatorNotAvailableError,
    IllegalArgumentError,
    IllegalGenerationError,
    KafkaError,
    NotCoordinatorForGroupError,
    RebalanceInProgressError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
    UnknownMemberIdError,
    for_code,
)
from streamclient.protocol.messages.offset_commit import OffsetCommitRequest, OffsetCommitResponse
from streamclient.structs import OffsetAndMetadata, TopicPartition

__all__ = ["CommitOutcome", "GenerationReset", "classify_commit_response", "offset_commit_request"]

_COORDINATOR_ERRORS = (
    NotCoordinatorForGroupError,
    GroupCoordinatorNotAvailableError,
    RequestTimedOutError,
)


def offset_commit_request(
    group_id: str,
    offsets: Mapping[TopicPartition, OffsetAndMetadata],
    *,
    generation_id: int = -1,
    member_id: str = "",
    group_instance_id: str | None = None,
    leader_epochs: Mapping[TopicPartition, int] | None = None,
) -> OffsetCommitRequest:
    """An OffsetCommit request (encodable at v1-v9; the instance id needs v7+)."""
    epochs = leader_epochs or {}
    by_topic: dict[
        str, list[OffsetCommitRequest.OffsetCommitRequestTopic.OffsetCommitRequestPartition]
    ] = {}
    for tp in sorted(offsets):
        entry = offsets[tp]
        offset, metadata = _offset_and_metadata(tp, entry)
        by_topic.setdefault(tp.topic, []).append(
            OffsetCommitRequest.OffsetCommitRequestTopic.OffsetCommitRequestPartition(
                partition_index=tp.partition,
                committed_offset=offset,
                committed_leader_epoch=epochs.get(tp, -1),
                committed_metadata=metadata,
            )
        )
    return OffsetCommitRequest(
        group_id=group_id,
        generation_id_or_member_epoch=generation_id,
        member_id=member_id,
        group_instance_id=group_instance_id,
        topics=[
            OffsetCommitRequest.OffsetCommitRequestTopic(name=t, partitions=ps)
            for t, ps in by_topic.items()
        ],
    )


def _offset_and_metadata(tp: TopicPartition, entry: object) -> tuple[int, str]:
    # aiokafka's commit() takes an int, an (offset, metadata) pair or OffsetAndMetadata
    if isinstance(entry, int) and not isinstance(entry, bool):
        offset, metadata = entry, ""
    elif isinstance(entry, tuple) and len(entry) == 2:
        offset, metadata = entry
    else:
        raise IllegalArgumentError(f"bad commit offset for {tp}: {entry!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise IllegalArgumentError(f"commit offset for {tp} must be an int >= 0: {offset!r}")
    if not isinstance(metadata, str):
        raise IllegalArgumentError(f"commit metadata for {tp} must be a str: {metadata!r}")
    return offset, metadata


class GenerationReset(enum.Enum):
    NONE = "none"
    GENERATION = "generation"  # ILLEGAL_GENERATION: keep the member id
    MEMBER = "member"  # UNKNOWN_MEMBER_ID: the coordinator forgot us entirely


@dataclass
class CommitOutcome:
    """What to do after an OffsetCommit answer.  ``error`` is ``None`` when every
    partition committed; ``retry`` says the same commit may be sent again (after
    rediscovering the coordinator when ``coordinator_moved``)."""

    committed: set[TopicPartition] = field(default_factory=set)
    failed: dict[TopicPartition, type[KafkaError]] = field(default_factory=dict)
    error: KafkaError | None = None
    retry: bool = False
    coordinator_moved: bool = False
    reset: GenerationReset = GenerationReset.NONE
    rejoin: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def classify_commit_response(response: OffsetCommitResponse, group_id: str) -> CommitOutcome:
    outcome = CommitOutcome()
    for topic in response.topics:
        for part in topic.partitions:
            tp = TopicPartition(topic.name, part.partition_index)
            if part.error_code:
                outcome.failed[tp] = for_code(part.error_code)
            else:
                outcome.committed.add(tp)
    if not outcome.failed:
        return outcome
    # the first error in a stable order decides, as every partition failed the same way
    # in practice (the errors that differ per partition are all retriable)
    tp, error_type = min(outcome.failed.items())
    if error_type in (IllegalGenerationError, UnknownMemberIdError, RebalanceInProgressError):
        outcome.error = CommitFailedError()
        outcome.error.__cause__ = error_type()
        if error_type is IllegalGenerationError:
            outcome.reset = GenerationReset.GENERATION
        elif error_type is UnknownMemberIdError:
            outcome.reset = GenerationReset.MEMBER
        else:
            outcome.rejoin = True
    elif error_type in _COORDINATOR_ERRORS:
        outcome.error = error_type()
        outcome.retry = outcome.coordinator_moved = True
    elif error_type is GroupAuthorizationFailedError:
        outcome.error = GroupAuthorizationFailedError(group_id)
    elif error_type is TopicAuthorizationFailedError:
        topics = sorted({t.topic for t, e in outcome.failed.items() if e is error_type})
        outcome.error = TopicAuthorizationFailedError(topics)
    else:
        outcome.error = error_type()
        outcome.retry = bool(getattr(error_type, "kafka_retriable", False))
    return outcome
