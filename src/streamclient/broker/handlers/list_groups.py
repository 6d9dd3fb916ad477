"""ListGroups: the groups this node coordinates, filtered by state (v4+) and type (v5+)."""

from __future__ import annotations

from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.protocol.messages import ListGroupsRequest, ListGroupsResponse


@handles(ListGroupsRequest, 0, 5)
async def handle(ctx: RequestContext, request: ListGroupsRequest, version: int) -> ListGroupsResponse:
    states = {s.lower() for s in request.states_filter} if version >= 4 else set()
    types = {t.lower() for t in request.types_filter} if version >= 5 else set()
    listed = []
    for group in ctx.state.groups.list_groups(ctx.node_id):
        if states and group.state.value.lower() not in states:
            continue
        # every group here is a classic group (KIP-848 groups are not served)
        if types and "classic" not in types:
            continue
        listed.append(
            ListGroupsResponse.ListedGroup(
                group_id=group.group_id,
                protocol_type=group.protocol_type or "",
                group_state=group.state.value if version >= 4 else "",
                group_type="classic" if version >= 5 else "",
            )
        )
    return ListGroupsResponse(groups=listed)
