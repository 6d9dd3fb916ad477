"""AddPartitionsToTxn: the client form (v0-3) and the batched form with verify_only (v4+)."""

from __future__ import annotations

from streamclient.broker.groups.error_code import Code
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.handlers.txn_errors import for_version
from streamclient.protocol.messages import AddPartitionsToTxnRequest, AddPartitionsToTxnResponse

_TopicResult = AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult
_PartitionResult = AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult


def _results(codes: dict[tuple[str, int], Code], version: int) -> list[_TopicResult]:
    by_topic: dict[str, list[_PartitionResult]] = {}
    for (topic, partition), code in codes.items():
        by_topic.setdefault(topic, []).append(
            _PartitionResult(
                partition_index=partition, partition_error_code=for_version(code, version, 2)
            )
        )
    return [_TopicResult(name=t, results_by_partition=r) for t, r in by_topic.items()]


@handles(AddPartitionsToTxnRequest, 0, 5)
async def handle(
    ctx: RequestContext, request: AddPartitionsToTxnRequest, version: int
) -> AddPartitionsToTxnResponse:
    txns = ctx.state.txns
    if version <= 3:
        partitions = [(t.name, p) for t in request.v3_and_below_topics for p in t.partitions]
        codes = txns.add_partitions(
            ctx.node_id, request.v3_and_below_transactional_id,
            request.v3_and_below_producer_id, request.v3_and_below_producer_epoch, partitions,
        )
        return AddPartitionsToTxnResponse(results_by_topic_v3_and_below=_results(codes, version))
    results = []
    for txn in request.transactions:
        partitions = [(t.name, p) for t in txn.topics for p in t.partitions]
        if txn.verify_only:
            codes = txns.verify_partitions(
                txn.transactional_id, txn.producer_id, txn.producer_epoch, partitions
            )
        else:
            codes = txns.add_partitions(
                ctx.node_id, txn.transactional_id, txn.producer_id, txn.producer_epoch,
                partitions,
            )
        results.append(
            AddPartitionsToTxnResponse.AddPartitionsToTxnResult(
                transactional_id=txn.transactional_id, topic_results=_results(codes, version)
            )
        )
    return AddPartitionsToTxnResponse(results_by_transaction=results)
