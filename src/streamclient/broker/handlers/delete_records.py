"""DeleteRecords (API 21): move a partition's log start forward."""

from __future__ import annotations

from streamclient.broker.handlers.partition_lookup import lookup
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.log import Err, ReadError
from streamclient.protocol.messages import DeleteRecordsRequest, DeleteRecordsResponse

TopicResult = DeleteRecordsResponse.DeleteRecordsTopicResult
PartitionResult = TopicResult.DeleteRecordsPartitionResult


@handles(DeleteRecordsRequest, 0, 2)
async def handle(ctx: RequestContext, request: DeleteRecordsRequest,
                 version: int) -> DeleteRecordsResponse:
    topics = []
    for topic in request.topics:
        parts = []
        for part in topic.partitions:
            out = PartitionResult(partition_index=part.partition_index, low_watermark=-1)
            target = lookup(ctx, topic.name, part.partition_index)
            if target.error != Err.NONE or target.log is None:
                out.error_code = target.error
            else:
                try:
                    # -1 means "up to the high watermark"; followers are in process, so
                    # their log starts move with the leader's and there is nothing to await
                    out.low_watermark = target.log.delete_records_before(part.offset)
                except ReadError as exc:
                    out.error_code = exc.error_code
            parts.append(out)
        topics.append(TopicResult(name=topic.name, partitions=parts))
    return DeleteRecordsResponse(topics=topics)
