"""DescribeProducers (API 61): the idempotent/transactional producers a partition knows."""

from __future__ import annotations

from streamclient.broker.handlers.partition_lookup import lookup
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.log import Err
from streamclient.protocol.messages import DescribeProducersRequest, DescribeProducersResponse

TopicResponse = DescribeProducersResponse.TopicResponse
PartitionResponse = TopicResponse.PartitionResponse
ProducerState = PartitionResponse.ProducerState


@handles(DescribeProducersRequest, 0, 0)
async def handle(ctx: RequestContext, request: DescribeProducersRequest,
                 version: int) -> DescribeProducersResponse:
    topics = []
    for topic in request.topics:
        parts = []
        for index in topic.partition_indexes:
            out = PartitionResponse(partition_index=index)
            target = lookup(ctx, topic.name, index)
            if target.error != Err.NONE or target.log is None:
                out.error_code = target.error
            else:
                out.active_producers = [
                    ProducerState(
                        producer_id=entry.producer_id, producer_epoch=entry.producer_epoch,
                        last_sequence=entry.last_seq, last_timestamp=entry.last_timestamp,
                        coordinator_epoch=entry.coordinator_epoch,
                        current_txn_start_offset=(-1 if entry.current_txn_first_offset is None
                                                  else entry.current_txn_first_offset))
                    for entry in target.log.producers.producers.values()]
            parts.append(out)
        topics.append(TopicResponse(name=topic.name, partitions=parts))
    return DescribeProducersResponse(topics=topics)
