"""TxnOffsetCommit: offsets that become visible only when the transaction commits."""

from __future__ import annotations

from streamclient.broker.groups.error_code import Code
from streamclient.broker.groups.offsets import OffsetAndMetadata
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.broker.handlers.txn_errors import for_version
from streamclient.protocol.messages import TxnOffsetCommitRequest, TxnOffsetCommitResponse

_Topic = TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic
_Partition = _Topic.TxnOffsetCommitResponsePartition


@handles(TxnOffsetCommitRequest, 0, 4)
async def handle(
    ctx: RequestContext, request: TxnOffsetCommitRequest, version: int
) -> TxnOffsetCommitResponse:
    now = ctx.state.clock.now_ms()
    codes: dict[tuple[str, int], Code] = {}
    offsets: dict[tuple[str, int], OffsetAndMetadata] = {}
    for topic in request.topics:
        for p in topic.partitions:
            tp = (topic.name, p.partition_index)
            if ctx.state.partition(*tp) is None:
                codes[tp] = Code.UNKNOWN_TOPIC_OR_PARTITION
                continue
            offsets[tp] = OffsetAndMetadata(
                p.committed_offset,
                p.committed_leader_epoch if version >= 2 else -1,
                p.committed_metadata or "",
                now,
            )
    if offsets:
        codes.update(
            ctx.state.groups.txn_commit_offsets(
                ctx.node_id, request.group_id, request.producer_id, request.producer_epoch,
                offsets,
                member_id=request.member_id if version >= 3 else "",
                generation_id=request.generation_id if version >= 3 else -1,
                group_instance_id=request.group_instance_id if version >= 3 else None,
            )
        )
    return TxnOffsetCommitResponse(
        topics=[
            _Topic(name=t.name, partitions=[
                _Partition(partition_index=p.partition_index,
                           error_code=for_version(codes[(t.name, p.partition_index)], version, 3))
                for p in t.partitions
            ])
            for t in request.topics
        ]
    )
