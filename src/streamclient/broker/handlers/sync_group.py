"""SyncGroup: the leader hands out assignments; followers wait for theirs."""

from __future__ import annotations

from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.protocol.messages import SyncGroupRequest, SyncGroupResponse


@handles(SyncGroupRequest, 0, 5)
async def handle(ctx: RequestContext, request: SyncGroupRequest, version: int) -> SyncGroupResponse:
    result = await ctx.state.groups.sync(
        ctx.node_id,
        request.group_id,
        member_id=request.member_id,
        generation_id=request.generation_id,
        assignments={a.member_id: bytes(a.assignment) for a in request.assignments},
        group_instance_id=request.group_instance_id if version >= 3 else None,
        protocol_type=request.protocol_type if version >= 5 else None,
        protocol_name=request.protocol_name if version >= 5 else None,
    )
    return SyncGroupResponse(
        error_code=result.error,
        protocol_type=result.protocol_type if version >= 5 else None,
        protocol_name=result.protocol_name if version >= 5 else None,
        assignment=result.assignment,
    )
