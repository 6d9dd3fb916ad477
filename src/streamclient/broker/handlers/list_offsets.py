"""ListOffsets (API 2): offsets by timestamp, and the special earliest/latest/max queries."""

from __future__ import annotations

from streamclient.broker.handlers.partition_lookup import lookup
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.log import READ_COMMITTED, Err, PartitionLog
from streamclient.protocol.messages import ListOffsetsRequest, ListOffsetsResponse

PartitionResponse = ListOffsetsResponse.ListOffsetsTopicResponse.ListOffsetsPartitionResponse

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3  # v7+
EARLIEST_LOCAL = -4  # v8+ (KIP-405): no tiered storage here, so the log start
LATEST_TIERED = -5  # v9+: nothing is tiered, Kafka answers offset -1


def _answer(log: PartitionLog, timestamp: int, isolation_level: int) -> tuple[int, int, int]:
    """(offset, timestamp, leader epoch) for one query."""
    if timestamp == LATEST:
        offset = log.last_stable_offset if isolation_level == READ_COMMITTED else log.high_watermark
        return offset, -1, log.leader_epoch
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        offset = log.log_start_offset
        return offset, -1, log.epochs.epoch_for_offset(offset)
    if timestamp == MAX_TIMESTAMP:
        found = log.max_timestamp_offset()
    elif timestamp < 0:
        return -1, -1, -1
    else:
        found = log.offset_for_timestamp(timestamp, isolation_level)
    if found is None:
        return -1, -1, -1
    offset, ts = found
    return offset, ts, log.epochs.epoch_for_offset(offset)


@handles(ListOffsetsRequest, 1, 10)
async def handle(ctx: RequestContext, request: ListOffsetsRequest,
                 version: int) -> ListOffsetsResponse:
    topics = []
    for topic in request.topics:
        parts = []
        for part in topic.partitions:
            resp = PartitionResponse(partition_index=part.partition_index)
            target = lookup(ctx, topic.name, part.partition_index,
                            current_leader_epoch=part.current_leader_epoch)
            if target.error != Err.NONE or target.log is None:
                resp.error_code = target.error
            elif part.timestamp == MAX_TIMESTAMP and version < 7:
                resp.error_code = Err.UNSUPPORTED_VERSION
            else:
                resp.offset, resp.timestamp, epoch = _answer(
                    target.log, part.timestamp, request.isolation_level if version >= 2 else 0)
                if version >= 4:
                    resp.leader_epoch = epoch
            parts.append(resp)
        topics.append(ListOffsetsResponse.ListOffsetsTopicResponse(name=topic.name, partitions=parts))
    return ListOffsetsResponse(topics=topics)
