"""DeleteGroups: removes empty groups and their committed offsets."""

from __future__ import annotations

from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.protocol.messages import DeleteGroupsRequest, DeleteGroupsResponse


@handles(DeleteGroupsRequest, 0, 2)
async def handle(
    ctx: RequestContext, request: DeleteGroupsRequest, version: int
) -> DeleteGroupsResponse:
    results = ctx.state.groups.delete_groups(ctx.node_id, list(request.groups_names))
    return DeleteGroupsResponse(
        results=[
            DeleteGroupsResponse.DeletableGroupResult(group_id=g, error_code=code)
            for g, code in results.items()
        ]
    )
