"""JoinGroup: parks until the group's rebalance completes (the group coordinator decides)."""

from __future__ import annotations

from streamclient.broker.groups.group import JoinParams
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.protocol.messages import JoinGroupRequest, JoinGroupResponse


@handles(JoinGroupRequest, 0, 9)
async def handle(ctx: RequestContext, request: JoinGroupRequest, version: int) -> JoinGroupResponse:
    session = request.session_timeout_ms
    params = JoinParams(
        member_id=request.member_id,
        client_id=ctx.client_id or "",
        client_host=ctx.client_host,
        protocol_type=request.protocol_type,
        protocols=[(p.name, bytes(p.metadata)) for p in request.protocols],
        session_timeout_ms=session,
        # v0 has no rebalance timeout: Kafka uses the session timeout for both
        rebalance_timeout_ms=request.rebalance_timeout_ms if version >= 1 else session,
        group_instance_id=request.group_instance_id if version >= 5 else None,
        require_known_member_id=version >= 4,
    )
    result = await ctx.state.groups.join(ctx.node_id, request.group_id, params)
    members = [
        JoinGroupResponse.JoinGroupResponseMember(
            member_id=m.member_id,
            group_instance_id=m.group_instance_id if version >= 5 else None,
            metadata=m.metadata,
        )
        for m in result.members
    ]
    protocol_name = result.protocol_name
    if protocol_name is None and version < 7:
        protocol_name = ""  # not nullable before v7
    return JoinGroupResponse(
        error_code=result.error,
        generation_id=result.generation_id,
        protocol_type=result.protocol_type if version >= 7 else None,
        protocol_name=protocol_name,
        leader=result.leader,
        skip_assignment=result.skip_assignment if version >= 9 else False,
        member_id=result.member_id,
        members=members,
    )
