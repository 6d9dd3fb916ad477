"""InitProducerId: a producer id for idempotence, or the epoch bump of a transactional id."""

from __future__ import annotations

from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.handlers.txn_errors import for_version
from streamclient.protocol.messages import InitProducerIdRequest, InitProducerIdResponse


@handles(InitProducerIdRequest, 0, 5)
async def handle(
    ctx: RequestContext, request: InitProducerIdRequest, version: int
) -> InitProducerIdResponse:
    expected = None
    if version >= 3 and request.producer_id >= 0:
        expected = (request.producer_id, request.producer_epoch)
    result = ctx.state.txns.init_producer_id(
        ctx.node_id, request.transactional_id, request.transaction_timeout_ms, expected
    )
    return InitProducerIdResponse(
        error_code=for_version(result.error, version, 4),
        producer_id=result.producer_id,
        producer_epoch=result.producer_epoch,
    )
