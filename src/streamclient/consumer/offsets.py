"""Offset bookkeeping that is neither fetching nor group membership.

- :class:`OffsetResetStrategy`: ``auto_offset_reset`` as the ListOffsets timestamp it asks for.
- :class:`FetchPosition`: where the next fetch of a partition starts (offset + leader epoch).
- Committed offsets: building the OffsetFetch request for the partitions that have no
  position yet, and reading its answer into positions or reset decisions
  (:func:`committed_offset_decisions`), as aiokafka's ``_update_fetch_positions`` does.
- Offset resets: the ListOffsets request per leader for partitions awaiting a reset, and
  applying its answer (:func:`list_offsets_request`, :func:`read_list_offsets`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from streamclient.errors import (
    GroupAuthorizationFailedError,
    GroupCoordinatorNotAvailableError,
    KafkaError,
    NoOffsetForPartitionError,
    NotCoordinatorForGroupError,
    UnknownTopicOrPartitionError,
    for_code,
)
from streamclient.protocol.messages.list_offsets import ListOffsetsRequest, ListOffsetsResponse
from streamclient.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchResponse
from streamclient.structs import OffsetAndMetadata, TopicPartition

__all__ = [
    "UNKNOWN_OFFSET",
    "CommittedOffsets",
    "FetchPosition",
    "ListedOffset",
    "OffsetResetStrategy",
    "list_offsets_request",
    "offset_fetch_request",
    "read_list_offsets",
    "read_offset_fetch",
]

#: What OffsetFetch answers for a partition with no committed offset.
UNKNOWN_OFFSET = -1


class OffsetResetStrategy(enum.IntEnum):
    """Where a partition without a valid position starts.  The value is the ListOffsets
    timestamp that asks for it (``NONE`` never reaches the broker)."""

    LATEST = -1
    EARLIEST = -2
    NONE = 0

    @classmethod
    def from_policy(cls, policy: str) -> OffsetResetStrategy:
        """``auto_offset_reset`` (``earliest`` / ``latest`` / ``none``) as a strategy."""
        try:
            return {"earliest": cls.EARLIEST, "latest": cls.LATEST, "none": cls.NONE}[
                policy.lower()
            ]
        except (KeyError, AttributeError):
            raise ValueError(f"unknown auto_offset_reset policy {policy!r}") from None


@dataclass(frozen=True, slots=True)
class FetchPosition:
    """The next offset to fetch, with the leader epoch of the record before it (``None``
    when unknown: after a seek or a reset, or from a broker too old to say)."""

    offset: int
    leader_epoch: int | None = None


# --- committed offsets (OffsetFetch) ---------------------------------------------------


def offset_fetch_request(
    group_id: str,
    partitions: Iterable[TopicPartition],
    version: int,
    *,
    require_stable: bool = True,
    member_id: str | None = None,
    member_epoch: int = -1,
) -> OffsetFetchRequest:
    """The OffsetFetch request for ``partitions`` in the layout of ``version`` (v8+ moved
    the group into a ``groups`` array).

    ``require_stable`` (KIP-447, v7+) makes the coordinator refuse offsets that a pending
    transactional commit may still change (UNSTABLE_OFFSET_COMMIT, retriable), so a
    read_committed consumer never starts from an offset that is later rolled back.
    """
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(set(partitions)):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    stable = require_stable and version >= 7
    if version >= 8:
        group = OffsetFetchRequest.OffsetFetchRequestGroup
        return OffsetFetchRequest(
            groups=[
                group(
                    group_id=group_id,
                    member_id=member_id if version >= 9 else None,
                    member_epoch=member_epoch if version >= 9 else -1,
                    topics=[
                        group.OffsetFetchRequestTopics(name=t, partition_indexes=ps)
                        for t, ps in by_topic.items()
                    ],
                )
            ],
            require_stable=stable,
        )
    return OffsetFetchRequest(
        group_id=group_id,
        topics=[
            OffsetFetchRequest.OffsetFetchRequestTopic(name=t, partition_indexes=ps)
            for t, ps in by_topic.items()
        ],
        require_stable=stable,
    )


@dataclass
class CommittedOffsets:
    """What an OffsetFetch answer says: offsets found, partitions with none, and the error
    that makes the whole answer unusable (``retry``: ask again after a backoff;
    ``coordinator_moved``: rediscover the coordinator first)."""

    offsets: dict[TopicPartition, OffsetAndMetadata]
    leader_epochs: dict[TopicPartition, int]
    missing: set[TopicPartition]
    error: KafkaError | None = None
    retry: bool = False
    coordinator_moved: bool = False


def read_offset_fetch(response: OffsetFetchResponse, group_id: str) -> CommittedOffsets:
    """Classify an OffsetFetch answer (either layout) the way aiokafka and Java do."""
    result = CommittedOffsets({}, {}, set())
    errors: list[type[KafkaError]] = []
    # v8+ nests the topics in groups, as a struct of another name with the same fields
    entries: list[OffsetFetchResponse.OffsetFetchResponseTopic
                  | OffsetFetchResponse.OffsetFetchResponseGroup.OffsetFetchResponseTopics]
    if response.groups:  # v8+
        entries = []
        for group in response.groups:
            if group.error_code:
                errors.append(for_code(group.error_code))
            entries.extend(group.topics)
    else:
        if response.error_code:
            errors.append(for_code(response.error_code))
        entries = list(response.topics)
    for topic in entries:
        for part in topic.partitions:
            tp = TopicPartition(topic.name, part.partition_index)
            if part.error_code:
                error_type = for_code(part.error_code)
                if error_type is UnknownTopicOrPartitionError:
                    result.missing.add(tp)  # the topic went away: nothing committed
                else:
                    errors.append(error_type)
                continue
            if part.committed_offset == UNKNOWN_OFFSET:
                result.missing.add(tp)
                continue
            result.offsets[tp] = OffsetAndMetadata(
                part.committed_offset, part.metadata if part.metadata is not None else ""
            )
            if part.committed_leader_epoch >= 0:
                result.leader_epochs[tp] = part.committed_leader_epoch
    if errors:
        first = errors[0]
        result.error = first(group_id) if first is GroupAuthorizationFailedError else first()
        result.coordinator_moved = first in (
            NotCoordinatorForGroupError,
            GroupCoordinatorNotAvailableError,
        )
        result.retry = bool(getattr(first, "kafka_retriable", False))
    return result


def reset_decision(tp: TopicPartition, default: OffsetResetStrategy) -> OffsetResetStrategy:
    """The reset a partition without a committed offset needs, or
    ``NoOffsetForPartitionError`` when the policy is ``none``."""
    if default is OffsetResetStrategy.NONE:
        raise NoOffsetForPartitionError(tp)
    return default


# --- offset resets (ListOffsets) -----------------------------------------------------


def list_offsets_request(
    resets: Mapping[TopicPartition, int],
    *,
    isolation_level: int,
    current_leader_epochs: Mapping[TopicPartition, int] | None = None,
) -> ListOffsetsRequest:
    """One ListOffsets request for partitions led by one broker.

    ``resets`` maps a partition to the timestamp asked for: an :class:`OffsetResetStrategy`
    value (-1 latest, -2 earliest) or a real timestamp (``offsets_for_times``).  With
    read_committed, "latest" is the last stable offset, so the isolation level matters.
    """
    epochs = current_leader_epochs or {}
    by_topic: dict[str, list[ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition]] = {}
    for tp in sorted(resets):
        by_topic.setdefault(tp.topic, []).append(
            ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
                partition_index=tp.partition,
                current_leader_epoch=epochs.get(tp, -1),
                timestamp=int(resets[tp]),
            )
        )
    return ListOffsetsRequest(
        replica_id=-1,
        isolation_level=isolation_level,
        topics=[
            ListOffsetsRequest.ListOffsetsTopic(name=t, partitions=ps) for t, ps in by_topic.items()
        ],
    )


@dataclass(frozen=True, slots=True)
class ListedOffset:
    offset: int
    timestamp: int | None
    leader_epoch: int | None


def read_list_offsets(
    response: ListOffsetsResponse,
) -> tuple[dict[TopicPartition, ListedOffset], dict[TopicPartition, type[KafkaError]]]:
    """Offsets found, and the per-partition errors (the caller retries the retriable ones
    after a metadata refresh when ``invalid_metadata`` is set)."""
    found: dict[TopicPartition, ListedOffset] = {}
    failed: dict[TopicPartition, type[KafkaError]] = {}
    for topic in response.topics:
        for part in topic.partitions:
            tp = TopicPartition(topic.name, part.partition_index)
            if part.error_code:
                failed[tp] = for_code(part.error_code)
                continue
            found[tp] = ListedOffset(
                part.offset,
                None if part.timestamp < 0 else part.timestamp,
                None if part.leader_epoch < 0 else part.leader_epoch,
            )
    return found, failed
