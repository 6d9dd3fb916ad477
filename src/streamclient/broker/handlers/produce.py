"""Produce (API 0): append each partition's batch, then answer by ``acks``.

acks=0 answers nothing, acks=1 after the leader's append, acks=-1 once the high
watermark covers the batch (REQUEST_TIMED_OUT after ``timeout_ms``), refusing up front
with NOT_ENOUGH_REPLICAS when the ISR is smaller than ``min.insync.replicas``.
"""

from __future__ import annotations

import anyio

from streamclient.broker.handlers.partition_lookup import leader_endpoints, lookup
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.log import AppendError, Err, PartitionLog
from streamclient.broker.log.batches import HEADER_SIZE, read_header
from streamclient.protocol.messages import ProduceRequest, ProduceResponse

PartitionResponse = ProduceResponse.TopicProduceResponse.PartitionProduceResponse
RecordError = PartitionResponse.BatchIndexAndErrorMessage
LeaderHint = PartitionResponse.LeaderIdAndEpoch


def _transaction_error(ctx: RequestContext, records: bytes | bytearray | memoryview,
                       topic: str, partition: int) -> int:
    """Ask the transaction coordinator whether a transactional batch may go here."""
    if len(records) < HEADER_SIZE or records[16] != 2:
        return 0
    header = read_header(records)
    if not header.is_transactional:
        return 0
    # KIP-890 part 1: the broker verifies that a transactional batch's partition was added to
    # the producer's ongoing transaction, so a hanging transaction cannot start by mistake.
    if ctx.state.txns.is_partition_in_transaction(header.producer_id, header.producer_epoch,
                                                  topic, partition):
        return 0
    return int(Err.INVALID_TXN_STATE)


def _append_one(ctx: RequestContext, request: ProduceRequest, topic: str,
                data: ProduceRequest.TopicProduceData.PartitionProduceData, version: int,
                now_ms: int) -> tuple[PartitionResponse, PartitionLog | None, int]:
    """Append one partition's batch; returns (response, log to wait on, offset to wait for)."""
    resp = PartitionResponse(index=data.index)
    target = lookup(ctx, topic, data.index, auto_create=True)
    if target.error != Err.NONE or target.log is None:
        resp.error_code = target.error
        if version >= 10 and target.error == Err.NOT_LEADER_OR_FOLLOWER:
            resp.current_leader = LeaderHint(leader_id=target.leader_id,
                                             leader_epoch=target.leader_epoch)
        return resp, None, 0
    log = target.log
    records = data.records
    if not records:
        resp.error_code = Err.INVALID_RECORD
        resp.error_message = "a produce request must carry one record batch per partition"
        return resp, None, 0
    txn_error = _transaction_error(ctx, records, topic, data.index)
    if txn_error:
        resp.error_code = txn_error
        return resp, None, 0
    if request.acks == -1 and len(log.isr) < log.config.min_insync_replicas:
        resp.error_code = Err.NOT_ENOUGH_REPLICAS
        resp.error_message = (f"ISR {list(log.isr)} is smaller than min.insync.replicas="
                              f"{log.config.min_insync_replicas}")
        return resp, None, 0
    try:
        result = log.append(bytes(records), origin="client", now_ms=now_ms)
    except AppendError as exc:
        resp.error_code = exc.error_code
        resp.base_offset = -1
        resp.log_start_offset = log.log_start_offset
        resp.error_message = exc.message
        resp.record_errors = [RecordError(batch_index=i, batch_index_error_message=m)
                              for i, m in exc.record_errors]
        return resp, None, 0
    resp.base_offset = result.base_offset
    resp.log_append_time_ms = result.log_append_time
    resp.log_start_offset = result.log_start_offset
    return resp, log, result.last_offset + 1


@handles(ProduceRequest, 3, 11)
async def handle(ctx: RequestContext, request: ProduceRequest, version: int) -> ProduceResponse | None:
    now_ms = ctx.state.clock.now_ms()
    acks = request.acks
    topics: list[ProduceResponse.TopicProduceResponse] = []
    pending: list[tuple[PartitionResponse, PartitionLog, int]] = []
    for topic_data in request.topic_data:
        responses = []
        for data in topic_data.partition_data:
            if acks not in (0, 1, -1):
                responses.append(PartitionResponse(index=data.index,
                                                   error_code=Err.INVALID_REQUIRED_ACKS))
                continue
            resp, log, wait_for = _append_one(ctx, request, topic_data.name, data, version, now_ms)
            responses.append(resp)
            if log is not None and acks == -1:
                pending.append((resp, log, wait_for))
        topics.append(ProduceResponse.TopicProduceResponse(
            name=topic_data.name, partition_responses=responses))
    if acks == 0:
        return None
    if pending:
        await _await_replication(pending, request.timeout_ms)
    response = ProduceResponse(responses=topics)
    if version >= 10:
        hinted = {p.current_leader.leader_id for t in topics for p in t.partition_responses
                  if p.error_code == Err.NOT_LEADER_OR_FOLLOWER}
        response.node_endpoints = leader_endpoints(ctx, hinted, ProduceResponse.NodeEndpoint)
    return response


async def _await_replication(pending: list[tuple[PartitionResponse, PartitionLog, int]],
                             timeout_ms: int) -> None:
    deadline = anyio.current_time() + max(0, timeout_ms) / 1000
    for resp, log, offset in pending:
        remaining_ms = (deadline - anyio.current_time()) * 1000
        if not await log.wait_for_high_watermark(offset, remaining_ms):
            resp.error_code = Err.REQUEST_TIMED_OUT
            resp.error_message = (f"high watermark {log.high_watermark} did not reach {offset} "
                                  f"within {timeout_ms} ms")
        elif len(log.isr) < log.config.min_insync_replicas:
            resp.error_code = Err.NOT_ENOUGH_REPLICAS_AFTER_APPEND
