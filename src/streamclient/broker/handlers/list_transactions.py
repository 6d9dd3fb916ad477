"""ListTransactions: transactional ids this node coordinates, with state/producer filters."""

from __future__ import annotations

from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.txn.transaction import TxnState
from streamclient.protocol.messages import ListTransactionsRequest, ListTransactionsResponse

_KNOWN_STATES = {s.display_name for s in TxnState}


@handles(ListTransactionsRequest, 0, 1)
async def handle(
    ctx: RequestContext, request: ListTransactionsRequest, version: int
) -> ListTransactionsResponse:
    filters = list(request.state_filters)
    listed = ctx.state.txns.list_transactions(
        ctx.node_id,
        states=[s for s in filters if s in _KNOWN_STATES],
        producer_ids=list(request.producer_id_filters),
        min_duration_ms=request.duration_filter if version >= 1 else -1,
    )
    unknown = [s for s in filters if s not in _KNOWN_STATES]
    if unknown and len(unknown) == len(filters):
        listed = []  # only unknown states asked for: nothing can match
    return ListTransactionsResponse(
        unknown_state_filters=unknown,
        transaction_states=[
            ListTransactionsResponse.TransactionState(
                transactional_id=md.transactional_id,
                producer_id=md.producer_id,
                transaction_state=md.state.display_name,
            )
            for md in listed
        ],
    )
