"""DescribeTransactions: state, producer and partitions of transactional ids."""

from __future__ import annotations

from streamclient.broker.groups.error_code import Code
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.protocol.messages import DescribeTransactionsRequest, DescribeTransactionsResponse

_State = DescribeTransactionsResponse.TransactionState


@handles(DescribeTransactionsRequest, 0, 0)
async def handle(
    ctx: RequestContext, request: DescribeTransactionsRequest, version: int
) -> DescribeTransactionsResponse:
    states = []
    for tid in request.transactional_ids:
        code, md = ctx.state.txns.describe(ctx.node_id, tid)
        if code is not Code.NONE or md is None:
            states.append(_State(error_code=code, transactional_id=tid))
            continue
        by_topic: dict[str, list[int]] = {}
        for topic, partition in sorted(md.partitions):
            by_topic.setdefault(topic, []).append(partition)
        states.append(
            _State(
                transactional_id=tid,
                transaction_state=md.state.display_name,
                transaction_timeout_ms=md.timeout_ms,
                transaction_start_time_ms=md.start_timestamp_ms,
                producer_id=md.producer_id,
                producer_epoch=md.producer_epoch,
                topics=[_State.TopicData(topic=t, partitions=ps) for t, ps in by_topic.items()],
            )
        )
    return DescribeTransactionsResponse(transaction_states=states)
