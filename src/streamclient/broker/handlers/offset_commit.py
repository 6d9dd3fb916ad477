"""OffsetCommit: group/generation checks, then offsets written to ``__consumer_offsets``."""

from __future__ import annotations

from streamclient.broker.groups.error_code import Code
from streamclient.broker.groups.offsets import OffsetAndMetadata
from streamclient.broker.handlers.registry import RequestContext, handles
from streamclient.protocol.messages import OffsetCommitRequest, OffsetCommitResponse

_Topic = OffsetCommitResponse.OffsetCommitResponseTopic
_Partition = _Topic.OffsetCommitResponsePartition


@handles(OffsetCommitRequest, 0, 9)
async def handle(
    ctx: RequestContext, request: OffsetCommitRequest, version: int
) -> OffsetCommitResponse:
    now = ctx.state.clock.now_ms()
    codes: dict[tuple[str, int], Code] = {}
    offsets: dict[tuple[str, int], OffsetAndMetadata] = {}
    for topic in request.topics:
        for p in topic.partitions:
            tp = (topic.name, p.partition_index)
            if ctx.state.partition(*tp) is None:
                codes[tp] = Code.UNKNOWN_TOPIC_OR_PARTITION
                continue
            # retention (v2-4) is ignored: offsets live as long as the group, as with
            # Kafka's offsets.retention.minutes for groups that stay subscribed
            commit_ts = p.commit_timestamp if version == 1 and p.commit_timestamp >= 0 else now
            offsets[tp] = OffsetAndMetadata(
                p.committed_offset,
                p.committed_leader_epoch if version >= 6 else -1,
                p.committed_metadata or "",
                commit_ts,
            )
    if offsets:
        codes.update(
            ctx.state.groups.commit_offsets(
                ctx.node_id,
                request.group_id,
                offsets,
                member_id=request.member_id if version >= 1 else "",
                generation_id=request.generation_id_or_member_epoch if version >= 1 else -1,
                group_instance_id=request.group_instance_id if version >= 7 else None,
            )
        )
    return OffsetCommitResponse(
        topics=[
            _Topic(
                name=topic.name,
                partitions=[
                    _Partition(
                        partition_index=p.partition_index,
                        error_code=codes[(topic.name, p.partition_index)],
                    )
                    for p in topic.partitions
                ],
            )
            for topic in request.topics
        ]
    )
