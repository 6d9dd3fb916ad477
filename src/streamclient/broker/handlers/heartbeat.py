"""Heartbeat: keeps a member's session alive and tells it when a rebalance starts."""

from __future__ import annotations

from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.protocol.messages import HeartbeatRequest, HeartbeatResponse


@handles(HeartbeatRequest, 0, 4)
async def handle(ctx: RequestContext, request: HeartbeatRequest, version: int) -> HeartbeatResponse:
    code = ctx.state.groups.heartbeat(
        ctx.node_id,
        request.group_id,
        member_id=request.member_id,
        generation_id=request.generation_id,
        group_instance_id=request.group_instance_id if version >= 3 else None,
    )
    return HeartbeatResponse(error_code=code)
