"""OffsetForLeaderEpoch (API 23): where a leader epoch ended (consumers use it to detect
log truncation after a leader change, KIP-320)."""

from __future__ import annotations

from streamclient.broker.handlers.partition_lookup import lookup
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.log import Err
from streamclient.protocol.messages import OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse

TopicResult = OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult
EpochEndOffset = TopicResult.EpochEndOffset


@handles(OffsetForLeaderEpochRequest, 0, 4)
async def handle(ctx: RequestContext, request: OffsetForLeaderEpochRequest,
                 version: int) -> OffsetForLeaderEpochResponse:
    topics = []
    for topic in request.topics:
        parts = []
        for part in topic.partitions:
            out = EpochEndOffset(partition=part.partition)
            target = lookup(ctx, topic.topic, part.partition,
                            current_leader_epoch=part.current_leader_epoch if version >= 2 else -1)
            if target.error != Err.NONE or target.log is None:
                out.error_code = target.error
            else:
                log = target.log
                out.leader_epoch, out.end_offset = log.epochs.end_offset_for(
                    part.leader_epoch, log.log_end_offset)
            parts.append(out)
        topics.append(TopicResult(topic=topic.topic, partitions=parts))
    return OffsetForLeaderEpochResponse(topics=topics)
