"""FindCoordinator: the node leading the key's internal-topic partition (group or txn)."""

from __future__ import annotations

from streamclient.broker.groups.error_code import Code
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.protocol.messages import FindCoordinatorRequest, FindCoordinatorResponse

_GROUP, _TRANSACTION = 0, 1


def _lookup(ctx: RequestContext, key: str, key_type: int) -> tuple[Code, int, str, int]:
    if key_type == _GROUP:
        node_id = ctx.state.groups.coordinator_for(key)
    elif key_type == _TRANSACTION:
        node_id = ctx.state.txns.coordinator_for(key)
    else:
        return Code.INVALID_REQUEST, -1, "", -1
    if node_id is None:
        return Code.COORDINATOR_NOT_AVAILABLE, -1, "", -1
    node = ctx.state.nodes[node_id]
    return Code.NONE, node_id, node.host, node.port


@handles(FindCoordinatorRequest, 0, 6)
async def handle(
    ctx: RequestContext, request: FindCoordinatorRequest, version: int
) -> FindCoordinatorResponse:
    if version >= 4:
        coordinators = []
        for key in request.coordinator_keys:
            code, node_id, host, port = _lookup(ctx, key, request.key_type)
            coordinators.append(
                FindCoordinatorResponse.Coordinator(
                    key=key, node_id=node_id, host=host, port=port, error_code=code,
                    error_message=None if code is Code.NONE else code.name,
                )
            )
        return FindCoordinatorResponse(coordinators=coordinators)
    code, node_id, host, port = _lookup(ctx, request.key, request.key_type)
    return FindCoordinatorResponse(
        error_code=code, error_message=None if code is Code.NONE else code.name,
        node_id=node_id, host=host, port=port,
    )
