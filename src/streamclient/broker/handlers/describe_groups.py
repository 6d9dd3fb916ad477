"""DescribeGroups: state, protocol and members (with metadata and assignment when Stable)."""

from __future__ import annotations

from streamclient.broker.groups.error_code import Code
from streamclient.broker.groups.group import GroupState
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.protocol.messages import DescribeGroupsRequest, DescribeGroupsResponse

_Described = DescribeGroupsResponse.DescribedGroup
_Member = _Described.DescribedGroupMember


def _describe(ctx: RequestContext, group_id: str, version: int) -> _Described:
    code, group = ctx.state.groups.describe(ctx.node_id, group_id)
    if code is not Code.NONE:
        return _Described(error_code=code, group_id=group_id)
    if group is None:
        # Kafka describes an unknown group as Dead rather than failing
        return _Described(group_id=group_id, group_state=GroupState.DEAD.value)
    stable = group.state is GroupState.STABLE
    members = [
        _Member(
            member_id=m.member_id,
            group_instance_id=m.group_instance_id if version >= 4 else None,
            client_id=m.client_id,
            client_host=m.client_host,
            member_metadata=m.metadata(group.protocol_name) if stable else b"",
            member_assignment=m.assignment if stable else b"",
        )
        for m in group.members.values()
    ]
    return _Described(
        group_id=group_id,
        group_state=group.state.value,
        protocol_type=group.protocol_type or "",
        protocol_data=(group.protocol_name or "") if stable else "",
        members=members,
    )


@handles(DescribeGroupsRequest, 0, 5)
async def handle(
    ctx: RequestContext, request: DescribeGroupsRequest, version: int
) -> DescribeGroupsResponse:
    return DescribeGroupsResponse(groups=[_describe(ctx, g, version) for g in request.groups])
