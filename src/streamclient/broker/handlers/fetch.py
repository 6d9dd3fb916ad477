"""Fetch (API 1): long-polling reads with byte limits, isolation levels and topic ids.

Sessionless only: the response carries session id 0, which tells librdkafka and the
Java client to keep sending full fetch requests (KIP-227 allows a broker to decline
sessions this way).  A request naming a session we never created gets
FETCH_SESSION_ID_NOT_FOUND.
"""

from __future__ import annotations

import anyio

from streamclient.broker.handlers.partition_lookup import (
    leader_endpoints,
    lookup,
    topic_name_for_id,
)
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.log import Err, PartitionLog, ReadError, wait_for_data
from streamclient.protocol.messages import FetchRequest, FetchResponse

TopicResponse = FetchResponse.FetchableTopicResponse
PartitionData = TopicResponse.PartitionData
FETCH_SESSION_ID_NOT_FOUND = 70


class _Budget:
    """The response-wide byte budget (``max_bytes``) and the first-batch exemption."""

    def __init__(self, max_bytes: int) -> None:
        self.remaining = max_bytes
        self.used = 0

    def take(self, n: int) -> None:
        self.used += n
        self.remaining -= n


def _read_partition(ctx: RequestContext, topic: str, part: FetchRequest.FetchTopic.FetchPartition,
                    isolation_level: int, budget: _Budget, version: int,
                    logs: list[PartitionLog]) -> PartitionData:
    out = PartitionData(partition_index=part.partition, high_watermark=-1,
                        last_stable_offset=-1, log_start_offset=-1, records=b"")
    target = lookup(ctx, topic, part.partition, current_leader_epoch=part.current_leader_epoch)
    if target.error != Err.NONE or target.log is None:
        out.error_code = target.error
        if version >= 12 and target.error in (Err.NOT_LEADER_OR_FOLLOWER, Err.FENCED_LEADER_EPOCH):
            out.current_leader = PartitionData.LeaderIdAndEpoch(
                leader_id=target.leader_id, leader_epoch=target.leader_epoch)
        return out
    log = target.log
    logs.append(log)
    limit = max(0, min(part.partition_max_bytes, budget.remaining))
    try:
        # Kafka's rule: the first batch of the response comes whole even past the limits,
        # so a consumer can always move forward past a large batch
        result = log.read(part.fetch_offset, limit, isolation_level, min_one_batch=budget.used == 0)
    except ReadError as exc:
        out.error_code = exc.error_code
        out.high_watermark = log.high_watermark
        out.last_stable_offset = log.last_stable_offset
        out.log_start_offset = log.log_start_offset
        return out
    budget.take(len(result.records))
    out.high_watermark = result.high_watermark
    out.last_stable_offset = result.last_stable_offset
    out.log_start_offset = result.log_start_offset
    out.records = result.records
    if isolation_level == 1:
        out.aborted_transactions = [
            PartitionData.AbortedTransaction(producer_id=t.producer_id, first_offset=t.first_offset)
            for t in result.aborted_transactions]
    else:
        out.aborted_transactions = None
    return out


def _build(ctx: RequestContext, request: FetchRequest, version: int,
           logs: list[PartitionLog]) -> tuple[FetchResponse, int, bool]:
    """One pass over the requested partitions: (response, bytes, any partition errored)."""
    budget = _Budget(request.max_bytes if version >= 3 else 2**31 - 1)
    errored = False
    topics: list[TopicResponse] = []
    for topic in request.topics:
        if version >= 13:
            name = topic_name_for_id(ctx, topic.topic_id)
            resp_topic = TopicResponse(topic_id=topic.topic_id)
        else:
            name = topic.topic
            resp_topic = TopicResponse(topic=topic.topic)
        for part in topic.partitions:
            if name is None:
                data = PartitionData(partition_index=part.partition, error_code=Err.UNKNOWN_TOPIC_ID,
                                     high_watermark=-1, last_stable_offset=-1, log_start_offset=-1,
                                     records=b"")
            else:
                data = _read_partition(ctx, name, part, request.isolation_level, budget, version, logs)
            errored = errored or data.error_code != 0
            resp_topic.partitions.append(data)
        topics.append(resp_topic)
    response = FetchResponse(responses=topics, session_id=0)
    if version >= 16:
        hinted = {p.current_leader.leader_id for t in topics for p in t.partitions
                  if p.current_leader.leader_id >= 0}
        response.node_endpoints = leader_endpoints(ctx, hinted, FetchResponse.NodeEndpoint)
    return response, budget.used, errored


@handles(FetchRequest, 4, 17)
async def handle(ctx: RequestContext, request: FetchRequest, version: int) -> FetchResponse:
    if version >= 7 and request.session_id != 0:
        return FetchResponse(error_code=FETCH_SESSION_ID_NOT_FOUND, session_id=0)
    deadline = anyio.current_time() + max(0, request.max_wait_ms) / 1000
    while True:
        logs: list[PartitionLog] = []
        response, size, errored = _build(ctx, request, version, logs)
        remaining_ms = (deadline - anyio.current_time()) * 1000
        if size >= request.min_bytes or errored or remaining_ms <= 0:
            return response
        if not logs:
            # an empty fetch is a client pacing itself: hold it for max_wait like Kafka does
            await anyio.sleep(remaining_ms / 1000)
            return response
        # nothing enough yet: park until one of the partitions changes or time runs out
        await wait_for_data(logs, remaining_ms)

