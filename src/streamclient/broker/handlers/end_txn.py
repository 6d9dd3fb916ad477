"""EndTxn: commit or abort; markers go to every partition of the transaction.

Served up to v4: v5 (KIP-890 part 2) would bump the epoch on every transaction.
"""

from __future__ import annotations

from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.handlers.txn_errors import for_version
from streamclient.protocol.messages import EndTxnRequest, EndTxnResponse


@handles(EndTxnRequest, 0, 4)
async def handle(ctx: RequestContext, request: EndTxnRequest, version: int) -> EndTxnResponse:
    code = ctx.state.txns.end_txn(
        ctx.node_id, request.transactional_id, request.producer_id, request.producer_epoch,
        request.committed,
    )
    return EndTxnResponse(error_code=for_version(code, version, 2))
