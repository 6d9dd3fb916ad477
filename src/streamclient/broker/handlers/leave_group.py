"""LeaveGroup: one member (v0-2) or a batch identified by member or instance id (v3+)."""

from __future__ import annotations

from streamclient.broker.groups.error_code import Code
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.protocol.messages import LeaveGroupRequest, LeaveGroupResponse


@handles(LeaveGroupRequest, 0, 5)
async def handle(ctx: RequestContext, request: LeaveGroupRequest, version: int) -> LeaveGroupResponse:
    if version < 3:
        top, errors = ctx.state.groups.leave(ctx.node_id, request.group_id,
                                             [(request.member_id, None)])
        return LeaveGroupResponse(error_code=top if top is not Code.NONE else errors[0])
    identities = [(m.member_id, m.group_instance_id) for m in request.members]
    top, errors = ctx.state.groups.leave(ctx.node_id, request.group_id, identities)
    if top is not Code.NONE:
        return LeaveGroupResponse(error_code=top)
    return LeaveGroupResponse(
        error_code=Code.NONE,
        members=[
            LeaveGroupResponse.MemberResponse(
                member_id=member_id, group_instance_id=instance_id, error_code=code
            )
            for (member_id, instance_id), code in zip(identities, errors, strict=True)
        ],
    )
