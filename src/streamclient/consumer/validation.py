"""Position validation after a leader change: log truncation detection (KIP-320).

A fetch position remembers the leader epoch of the record before it.  When metadata
reports a new leader (or epoch) for the partition, the consumer stops fetching it
(``AWAIT_VALIDATION`` in :class:`~streamclient.consumer.subscription.SubscriptionState`)
and asks the new leader, with OffsetForLeaderEpoch, where that epoch ends in its log:

- the end offset is at or past the position: the position stands, fetching resumes;
- the end offset is below it: the leader's log was truncated (an unclean election) and
  the records from there to the position no longer exist.  With ``auto_offset_reset``
  ``earliest`` or ``latest`` the position moves to the end offset, the first offset the
  two logs no longer share, so what the new leader wrote there is read (Java does the
  same: it does not apply the reset policy here); with ``none`` the application gets
  :class:`~streamclient.errors.LogTruncationError` and the partition waits for a seek;
- the broker knows no such epoch (``-1`` epoch or offset): the divergence point is
  unknown, so the partition is reset by the policy (``none``: ``LogTruncationError``
  without a divergent offset).

Everything here is sans-IO: the request for one leader, reading its answer, and applying
one partition's answer to the subscription.  The fetcher sends the requests.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from streamclient.consumer.offsets import FetchPosition, OffsetResetStrategy
from streamclient.consumer.subscription import SubscriptionState
from streamclient.errors import (
    KafkaError,
    LogTruncationError,
    TopicAuthorizationFailedError,
    for_code,
)
from streamclient.protocol.messages.offset_for_leader_epoch import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)
from streamclient.structs import TopicPartition

__all__ = [
    "FIRST_CONSUMER_VERSION",
    "EpochEndOffset",
    "ValidationOutcome",
    "ValidationResult",
    "apply_epoch_end_offset",
    "offset_for_leader_epoch_request",
    "read_offset_for_leader_epoch",
    "supports_validation",
    "truncation_error",
]

log = logging.getLogger(__name__)

#: OffsetForLeaderEpoch v3 added ``replica_id`` (-1: a consumer).  Before it a broker
#: takes every request for a follower's and wants CLUSTER_ACTION, so Java validates only
#: with v3+ and skips validation against older brokers; so do we.
FIRST_CONSUMER_VERSION = 3

_API_KEY = OffsetForLeaderEpochRequest.API_KEY
_Partition = OffsetForLeaderEpochRequest.OffsetForLeaderTopic.OffsetForLeaderPartition
UNDEFINED = -1


def supports_validation(api_versions: Mapping[int, tuple[int, int]]) -> bool:
    """Whether a broker advertising ``api_versions`` (key → (min, max)) can validate
    consumer positions (Java's ``hasUsableOffsetForLeaderEpochVersion``)."""
    entry = api_versions.get(_API_KEY)
    return entry is not None and entry[1] >= FIRST_CONSUMER_VERSION


def offset_for_leader_epoch_request(
    positions: Mapping[TopicPartition, tuple[FetchPosition, int | None]],
) -> OffsetForLeaderEpochRequest:
    """One request to a leader: for each partition, its position's epoch (whose end
    offset is asked for) and the leader epoch we believe current (the broker fences a
    stale one with FENCED_LEADER_EPOCH, and answers UNKNOWN_LEADER_EPOCH when it is
    itself behind)."""
    Topic = OffsetForLeaderEpochRequest.OffsetForLeaderTopic
    by_topic: dict[str, list[_Partition]] = {}
    for tp in sorted(positions):
        position, current_epoch = positions[tp]
        if position.leader_epoch is None:
            raise ValueError(f"the position of {tp} has no leader epoch to validate")
        by_topic.setdefault(tp.topic, []).append(
            _Partition(
                partition=tp.partition,
                current_leader_epoch=UNDEFINED if current_epoch is None else current_epoch,
                leader_epoch=position.leader_epoch,
            )
        )
    return OffsetForLeaderEpochRequest(
        replica_id=-1,  # a consumer, not a follower
        topics=[Topic(topic=t, partitions=ps) for t, ps in by_topic.items()],
    )


@dataclass(frozen=True, slots=True)
class EpochEndOffset:
    """Where the asked epoch ends in the leader's log: the largest epoch it knows that is
    not above the asked one, and the offset where the next epoch begins (-1: unknown)."""

    leader_epoch: int
    end_offset: int

    @property
    def undefined(self) -> bool:
        return self.leader_epoch == UNDEFINED or self.end_offset == UNDEFINED


def read_offset_for_leader_epoch(
    response: OffsetForLeaderEpochResponse,
) -> tuple[dict[TopicPartition, EpochEndOffset], dict[TopicPartition, type[KafkaError]]]:
    """End offsets found, and the per-partition errors."""
    found: dict[TopicPartition, EpochEndOffset] = {}
    failed: dict[TopicPartition, type[KafkaError]] = {}
    for topic in response.topics:
        for part in topic.partitions:
            tp = TopicPartition(topic.topic, part.partition)
            if part.error_code:
                failed[tp] = for_code(part.error_code)
            else:
                found[tp] = EpochEndOffset(part.leader_epoch, part.end_offset)
    return found, failed


def is_fatal(error_type: type[KafkaError]) -> bool:
    """Java retries every partition error of OffsetForLeaderEpoch (after a metadata
    refresh) except a missing topic authorization, which the application must see."""
    return error_type is TopicAuthorizationFailedError


class ValidationOutcome(enum.Enum):
    #: the answer no longer applies (the partition was seeked, reset or reassigned)
    IGNORED = "ignored"
    #: the position is in the new leader's log: fetching resumes
    VALID = "valid"
    #: truncated below the position: moved to the divergence point
    RESET_TO_DIVERGENCE = "reset_to_divergence"
    #: truncated to an unknown point: reset by the ``auto_offset_reset`` policy
    RESET_BY_POLICY = "reset_by_policy"
    #: truncated and the policy is ``none``: the application must decide
    TRUNCATED = "truncated"


@dataclass(frozen=True, slots=True)
class ValidationResult:
    tp: TopicPartition
    outcome: ValidationOutcome
    fetch_offset: int
    #: where the logs diverged, when known (RESET_TO_DIVERGENCE, TRUNCATED)
    divergent_offset: int | None = None


def apply_epoch_end_offset(
    subs: SubscriptionState,
    tp: TopicPartition,
    requested: FetchPosition,
    end: EpochEndOffset,
) -> ValidationResult:
    """Apply one partition's answer (Java's ``maybeCompleteValidation``).

    ``requested`` is the position the request was built from: an answer for a position
    the partition no longer holds is ignored.  A truncation with policy ``none`` leaves
    the partition awaiting validation; the caller raises :func:`truncation_error`.
    """
    if not subs.awaiting_validation(tp) or subs.position(tp) != requested:
        return ValidationResult(tp, ValidationOutcome.IGNORED, requested.offset)
    has_policy = subs.default_reset_strategy is not OffsetResetStrategy.NONE
    if end.undefined:
        if not has_policy:
            log.warning(
                "truncation detected for %s at offset %d with epoch %s; the divergence "
                "point is unknown and auto_offset_reset is none",
                tp, requested.offset, requested.leader_epoch,
            )
            return ValidationResult(tp, ValidationOutcome.TRUNCATED, requested.offset)
        log.warning(
            "truncation detected for %s at offset %d with epoch %s; the divergence point "
            "is unknown, resetting by auto_offset_reset",
            tp, requested.offset, requested.leader_epoch,
        )
        subs.request_offset_reset(tp)
        return ValidationResult(tp, ValidationOutcome.RESET_BY_POLICY, requested.offset)
    if end.end_offset < requested.offset:
        if not has_policy:
            log.warning(
                "truncation detected for %s: position %d, the log diverged at %d "
                "(epoch %d) and auto_offset_reset is none",
                tp, requested.offset, end.end_offset, end.leader_epoch,
            )
            return ValidationResult(
                tp, ValidationOutcome.TRUNCATED, requested.offset, end.end_offset
            )
        log.warning(
            "truncation detected for %s: position %d, resetting to %d where the log "
            "diverged (epoch %d); the records in between are lost",
            tp, requested.offset, end.end_offset, end.leader_epoch,
        )
        subs.seek_validated(tp, FetchPosition(end.end_offset, end.leader_epoch))
        return ValidationResult(
            tp, ValidationOutcome.RESET_TO_DIVERGENCE, requested.offset, end.end_offset
        )
    subs.complete_validation(tp)
    return ValidationResult(tp, ValidationOutcome.VALID, requested.offset)


def truncation_error(results: list[ValidationResult]) -> LogTruncationError:
    """One error naming every truncated partition (Java gathers them the same way)."""
    return LogTruncationError(
        {r.tp: r.fetch_offset for r in results},
        {r.tp: r.divergent_offset for r in results if r.divergent_offset is not None},
    )
