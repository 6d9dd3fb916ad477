"""AddOffsetsToTxn: puts the group's ``__consumer_offsets`` partition into the transaction."""

from __future__ import annotations

from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.handlers.txn_errors import for_version
from streamclient.protocol.messages import AddOffsetsToTxnRequest, AddOffsetsToTxnResponse


@handles(AddOffsetsToTxnRequest, 0, 4)
async def handle(
    ctx: RequestContext, request: AddOffsetsToTxnRequest, version: int
) -> AddOffsetsToTxnResponse:
    code = ctx.state.txns.add_offsets(
        ctx.node_id, request.transactional_id, request.producer_id, request.producer_epoch,
        request.group_id,
    )
    return AddOffsetsToTxnResponse(error_code=for_version(code, version, 2))
