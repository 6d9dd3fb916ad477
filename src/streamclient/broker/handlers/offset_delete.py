"""OffsetDelete: drops committed offsets of topics the group no longer consumes."""

from __future__ import annotations

from streamclient.broker.groups.error_code import Code
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.protocol.messages import OffsetDeleteRequest, OffsetDeleteResponse

_Topic = OffsetDeleteResponse.OffsetDeleteResponseTopic
_Partition = _Topic.OffsetDeleteResponsePartition


@handles(OffsetDeleteRequest, 0, 0)
async def handle(
    ctx: RequestContext, request: OffsetDeleteRequest, version: int
) -> OffsetDeleteResponse:
    wanted = [(t.name, p.partition_index) for t in request.topics for p in t.partitions]
    code, results = ctx.state.groups.delete_offsets(ctx.node_id, request.group_id, wanted)
    if code is not Code.NONE:
        return OffsetDeleteResponse(error_code=code)
    for tp in wanted:
        if ctx.state.partition(*tp) is None:
            results[tp] = Code.UNKNOWN_TOPIC_OR_PARTITION
    return OffsetDeleteResponse(
        topics=[
            _Topic(name=t.name, partitions=[
                _Partition(partition_index=p.partition_index,
                           error_code=results[(t.name, p.partition_index)])
                for p in t.partitions
            ])
            for t in request.topics
        ]
    )
