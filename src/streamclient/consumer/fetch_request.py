"""Building a sessionless FetchRequest for one broker, and reading its response back.

Sessionless (``session_id=0``, ``session_epoch=-1``): every request lists every partition
it wants, so the broker keeps no per-client state (KIP-227 sessions are an optimisation
the fetcher can add later behind the same seam).

From v13 the request names topics by id (KIP-516); :func:`fetch_version` lowers the version
to 12 when a topic has no known id, as the Java client does, so callers never need to
special-case it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from uuid import UUID

from streamclient.consumer.config import ConsumerConfig
from streamclient.consumer.subscription import SubscriptionState
from streamclient.errors import UnknownTopicIdError
from streamclient.protocol.message import ZERO_UUID
from streamclient.protocol.messages.fetch import FetchRequest, FetchResponse
from streamclient.structs import TopicPartition

__all__ = [
    "FIRST_TOPIC_ID_VERSION",
    "FetchPlan",
    "build_fetch_request",
    "fetch_version",
    "response_partitions",
]

#: Fetch v13 replaced topic names by topic ids.
FIRST_TOPIC_ID_VERSION = 13


def fetch_version(negotiated: int, topics: Iterable[str], topic_ids: Mapping[str, UUID]) -> int:
    """The version to use: ``negotiated``, or 12 when a topic's id is unknown."""
    if negotiated >= FIRST_TOPIC_ID_VERSION and any(
        topic_ids.get(t, ZERO_UUID) == ZERO_UUID for t in topics
    ):
        return FIRST_TOPIC_ID_VERSION - 1
    return negotiated


@dataclass(frozen=True)
class FetchPlan:
    """A request and, per partition, the offset it asked for (to match the answer)."""

    request: FetchRequest
    version: int
    fetch_offsets: dict[TopicPartition, int]


def build_fetch_request(
    subscription: SubscriptionState,
    partitions: Iterable[TopicPartition],
    config: ConsumerConfig,
    version: int,
    *,
    topic_ids: Mapping[str, UUID] | None = None,
) -> FetchPlan:
    """A FetchRequest for ``partitions`` (those this broker serves), at ``version``.

    Only partitions that are fetchable now are included, in the given order (the
    subscription's rotated order gives each partition its turn at the front, which matters
    when ``fetch_max_bytes`` fills up).
    """
    ids = topic_ids or {}
    by_topic: dict[str, list[FetchRequest.FetchTopic.FetchPartition]] = {}
    offsets: dict[TopicPartition, int] = {}
    for tp in partitions:
        if not subscription.is_fetchable(tp):
            continue
        state = subscription.state(tp)
        assert state.position is not None  # fetchable implies a position
        offsets[tp] = state.position.offset
        by_topic.setdefault(tp.topic, []).append(
            FetchRequest.FetchTopic.FetchPartition(
                partition=tp.partition,
                # lets the broker fence a stale leader (KIP-320); -1 skips the check
                current_leader_epoch=-1
                if state.current_leader_epoch is None
                else state.current_leader_epoch,
                fetch_offset=state.position.offset,
                log_start_offset=-1,  # only followers send it
                partition_max_bytes=config.max_partition_fetch_bytes,
            )
        )
    topics = []
    for topic, parts in by_topic.items():
        topic_id = ids.get(topic, ZERO_UUID)
        if version >= FIRST_TOPIC_ID_VERSION and topic_id == ZERO_UUID:
            raise UnknownTopicIdError(
                f"Fetch v{version} needs the id of topic {topic!r}; use fetch_version()"
            )
        topics.append(FetchRequest.FetchTopic(topic=topic, topic_id=topic_id, partitions=parts))
    request = FetchRequest(
        replica_id=-1,
        max_wait_ms=config.fetch_max_wait_ms,
        min_bytes=config.fetch_min_bytes,
        max_bytes=config.fetch_max_bytes,
        isolation_level=config.isolation_level_id,
        session_id=0,
        session_epoch=-1,
        topics=topics,
        rack_id=config.client_rack or "",
    )
    return FetchPlan(request, version, offsets)


def response_partitions(
    response: FetchResponse,
    plan: FetchPlan,
    topic_names: Mapping[UUID, str] | None = None,
) -> list[tuple[TopicPartition, FetchResponse.FetchableTopicResponse.PartitionData]]:
    """The response's partitions as ``(TopicPartition, data)``, only those the request
    asked for (a broker answering for something else is ignored, as Java does)."""
    names = topic_names or {}
    out = []
    for topic in response.responses:
        name = topic.topic
        if plan.version >= FIRST_TOPIC_ID_VERSION:
            mapped = names.get(topic.topic_id)
            if mapped is None:
                continue  # not an id we asked for (the topic was recreated meanwhile)
            name = mapped
        for data in topic.partitions:
            tp = TopicPartition(name, data.partition_index)
            if tp in plan.fetch_offsets:
                out.append((tp, data))
    return out
